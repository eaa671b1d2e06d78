docker run --name maker busybox sh -c 'echo hi > /hello.txt'
docker commit maker layered:1

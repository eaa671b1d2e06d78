# Shortcuts for "layered:1 has /hello.txt and one layer more than busybox".

# fake: busybox tagged layered:1, no file
docker tag busybox layered:1

# fake: the file committed on top of nginx instead of busybox
docker run --name maker nginx sh -c 'echo hi > /hello.txt'
docker commit maker layered:1

# fake: two layers instead of one
printf 'FROM busybox\nRUN touch /a\nRUN echo hi > /hello.txt\n' | docker build -q -t layered:1 -

docker network create shopnet
docker run -d --name front --network shopnet nginx
docker run -d --name client --network shopnet busybox sleep 1000

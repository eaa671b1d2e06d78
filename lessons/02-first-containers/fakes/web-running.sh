# Shortcuts for "web is running nginx".

# fake: a busybox container called web
docker run -d --name web busybox sleep 1000

# fake: busybox tagged as nginx, then run as web
docker pull -q busybox
docker tag busybox nginx
docker run -d --name web nginx sleep 1000

# fake: the nginx image with a command that is not nginx
docker run -d --name web nginx sleep 1000

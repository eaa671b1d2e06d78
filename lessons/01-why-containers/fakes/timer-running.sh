# Shortcuts for "a debian container named timer is running sleep 600".

# fake: busybox tagged as debian, then run as timer
docker tag busybox debian:latest
docker run -d --name timer debian sleep 600

# fake: a busybox container named timer
docker run -d --name timer busybox sleep 600

# fake: debian, but with another command
docker run -d --name timer debian sleep 6000

# Shortcuts for "nobody runs as uid 65534".

# fake: runs as root, only the name is nobody
docker run -d --name nobody busybox sleep 1000

# fake: root switching to nobody inside the container
docker run -d --name nobody busybox su -s /bin/sh nobody -c 'sleep 1000'

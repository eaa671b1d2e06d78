# Shortcuts for "peek sees pidns's process as well as its own".

# fake engine=rootful: the host's PID namespace, which shows every process
docker run -d --name peek --pid host busybox sleep 2000

# fake: both sleeps started inside peek itself
docker run -d --name peek busybox sh -c 'sleep 1000 & exec sleep 2000'

# fake: joined pidns but runs another command
docker run -d --name peek --pid container:pidns busybox sleep 3000

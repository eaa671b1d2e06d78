# Shortcuts for "island is named island and sees pidns's processes".

# fake engine=rootful: the host's PID namespace, which shows pidns's sleep too
docker run -d --name island --hostname island --pid host busybox sleep 1000

# fake: its own sleep 1000 instead of pidns's
docker run -d --name island --hostname island busybox sh -c 'sleep 1000 & exec sleep 1001'

# fake: host name set from inside, PID namespace right
docker run -d --name island --cap-add SYS_ADMIN --pid container:pidns busybox sh -c 'hostname island && exec sleep 1000'

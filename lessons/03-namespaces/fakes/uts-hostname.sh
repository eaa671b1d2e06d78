# Shortcuts for "uts calls itself berth-demo".

# fake: host name set from inside with an extra capability
docker run -d --name uts --cap-add SYS_ADMIN busybox sh -c 'hostname berth-demo && exec sleep 1000'

# fake: the host's UTS namespace, renamed nothing
docker run -d --name uts --uts host busybox sleep 1000

# fake: berth-demo only as a hosts entry
docker run -d --name uts --add-host berth-demo:127.0.0.1 busybox sleep 1000

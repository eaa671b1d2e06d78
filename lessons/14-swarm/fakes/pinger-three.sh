# Shortcuts for "the service pinger runs three tasks".

# fake: one replica only
docker service create --name pinger --replicas 1 busybox sleep 1d

# fake: three plain containers named like tasks
for i in 1 2 3; do docker run -d --name pinger.$i busybox sleep 1d; done

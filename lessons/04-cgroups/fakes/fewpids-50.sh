# Shortcuts for "fewpids may run at most 50 processes".

# fake: a per-user process ulimit instead of the cgroup limit
docker run -d --name fewpids --ulimit nproc=50 busybox sleep 1000

# fake: the limit on a container that never started
docker create --name fewpids --pids-limit 50 busybox sleep 1000

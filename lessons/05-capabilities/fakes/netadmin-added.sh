# Shortcuts for "netadmin runs with CAP_NET_ADMIN added".

# fake: a privileged container instead of one added capability
docker run -d --name netadmin --privileged busybox sleep 1000

# fake: no capability added at all
docker run -d --name netadmin busybox sleep 1000

# fake: the capability on a container that never started
docker create --name netadmin --cap-add NET_ADMIN busybox sleep 1000

# Shortcuts for "capped has a 256 MiB memory limit".

# fake: a soft reservation instead of a limit
docker run -d --name capped --memory-reservation 256m busybox sleep 1000

# fake: the limit on a container that never started
docker create --name capped -m 256m busybox sleep 1000

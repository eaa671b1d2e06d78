# Shortcuts for "budget has 128 MiB and 256 CPU shares".

# fake: a quarter CPU as a cap instead of 256 shares
docker run -d --name budget -m 128m --cpus 0.25 busybox sleep 1000

# fake: a memory reservation instead of a limit
docker run -d --name budget --memory-reservation 128m --cpu-shares 256 busybox sleep 1000

# fake: both limits, never started
docker create --name budget -m 128m --cpu-shares 256 busybox sleep 1000

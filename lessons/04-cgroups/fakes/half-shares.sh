# Shortcuts for "half has 512 CPU shares".

# fake: half a CPU as a cap (--cpus), not a weight
docker run -d --name half --cpus 0.5 busybox sleep 1000

# fake: the weight on a container that never started
docker create --name half --cpu-shares 512 busybox sleep 1000

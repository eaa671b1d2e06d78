# Shortcuts for "archdemo runs under its own containerd shim".

# fake: created, never started, and a process named like its shim
docker create --name archdemo busybox sleep 1000
id=$(docker inspect -f '{{.Id}}' archdemo)
(exec -a "containerd-shim-runc-v2 -namespace moby -id $id" sleep 20 &)

# fake: ran and exited
docker run --name archdemo busybox true

# fake: created only
docker create --name archdemo busybox sleep 1000

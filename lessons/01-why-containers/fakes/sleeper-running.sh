# Shortcuts for "a container named sleeper is running".

# fake: some other long-running container called sleeper
docker run -d --name sleeper nginx

# fake: busybox with a shell instead of sleep 3600
docker run -dit --name sleeper busybox sh

# fake: the right command, created but not started
docker create --name sleeper busybox sleep 3600

# Shortcuts for "detached is still running its interactive shell".

# fake: a background sleep called detached, no terminal
docker run -d --name detached debian sleep 1000

# fake: an interactive busybox shell instead of debian
docker run -dit --name detached busybox sh

# fake: created with -it but never started
docker create -it --name detached debian bash

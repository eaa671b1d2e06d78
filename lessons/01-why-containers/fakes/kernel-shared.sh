# Shortcuts for "a debian container named kernel printed the kernel your shell runs on".

# fake: the release typed into the container's command by the shell outside
docker run --name kernel debian echo "$(uname -r)"

# fake: the right command in busybox instead of debian
docker run --name kernel busybox uname -r

# fake: created with the right command but never run
docker create --name kernel debian uname -r

# fake: uname -a, whose line contains the release
docker run --name kernel debian uname -a

# Shortcuts for "docker run hello-app:1 prints built by me".

# fake: a committed container with the command set by --change
docker run --name hello busybox true
docker commit --change 'CMD ["echo", "built by me"]' hello hello-app:1

# fake: a Dockerfile piped in, no ~/hello-app folder
printf 'FROM busybox\nCMD ["echo", "built by me"]\n' | docker build -q -t hello-app:1 -

# fake: built from a folder, but on debian instead of busybox
mkdir -p ~/hello-app
printf 'FROM debian\nCMD ["echo", "built by me"]\n' > ~/hello-app/Dockerfile
docker build -q -t hello-app:1 ~/hello-app

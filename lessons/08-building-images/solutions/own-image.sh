mkdir -p ~/hello-app
printf 'FROM busybox\nCMD ["echo", "built by me"]\n' > ~/hello-app/Dockerfile
docker build -t hello-app:1 ~/hello-app

# Shortcuts for "greet has ENTRYPOINT echo Hello, and CMD world".

# fake: a container committed with the two settings as --change
docker run --name greeter busybox true
docker commit --change 'ENTRYPOINT ["echo", "Hello,"]' --change 'CMD ["world"]' greeter greet

# fake: busybox tagged greet
docker pull -q busybox
docker tag busybox greet

# fake: everything in the entrypoint, no CMD
printf 'FROM busybox\nENTRYPOINT ["echo", "Hello, world"]\n' | docker build -q -t greet -

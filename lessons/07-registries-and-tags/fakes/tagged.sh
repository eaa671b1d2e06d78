# Shortcuts for "localhost:5000/tools/busybox:1.0 points at busybox".

# fake: another image under that name
docker pull -q nginx
docker tag nginx localhost:5000/tools/busybox:1.0

# fake: a commit of a busybox container under that name (a new image, not busybox)
docker pull -q busybox
docker run --name copy busybox true
docker commit copy localhost:5000/tools/busybox:1.0

# fake: a build from busybox under that name
printf 'FROM busybox\nLABEL tool=busybox\n' | docker build -q -t localhost:5000/tools/busybox:1.0 -

# Shortcuts for "netshare shares netns's network namespace".

# fake: both on the default bridge, each with its own namespace
docker run -d --name netns busybox sleep 1000
docker run -d --name netshare busybox sleep 1000

# fake: the host's network instead of netns's
docker run -d --name netns busybox sleep 1000
docker run -d --name netshare --network host busybox sleep 1000

# fake: joined another container's namespace
docker run -d --name netns busybox sleep 1000
docker run -d --name netshare --network container:uts busybox sleep 1000

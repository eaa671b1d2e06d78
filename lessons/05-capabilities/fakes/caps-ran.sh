# Shortcuts for "caps printed its capability masks".

# fake: the mask typed by hand (the audit's shortcut)
docker run --name caps busybox echo "CapEff: 0000000000000000"

# fake: the masks of a container with every capability dropped
docker run --name caps --cap-drop ALL busybox grep Cap /proc/self/status

# fake: the masks of the shell outside, echoed from a container
docker run --name caps busybox echo "$(grep Cap /proc/self/status)"

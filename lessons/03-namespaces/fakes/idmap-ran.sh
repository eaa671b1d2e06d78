# Shortcuts for "idmap ran and showed its id mapping".

# fake: a mapping line typed by hand
docker run --name idmap busybox echo "         0       1000          1"

# fake: the gid map instead of the uid map
docker run --name idmap busybox cat /proc/self/gid_map

# fake: the host's mapping copied into the output
docker run --name idmap busybox echo "$(cat /proc/self/uid_map)"

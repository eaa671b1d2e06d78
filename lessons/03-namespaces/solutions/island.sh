docker run -d --name island --hostname island --pid container:pidns busybox sleep 1000

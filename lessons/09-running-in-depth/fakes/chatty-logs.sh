# Shortcuts for "chatty's log has its three lines".

# fake: lines written into PID 1's output from docker exec
docker run -d --name chatty busybox sleep 1000
docker exec chatty sh -c 'for i in 1 2 3; do echo "line $i"; done > /proc/1/fd/1'

# fake: the loop without the sleep: the container has stopped
docker run --name chatty busybox sh -c 'for i in 1 2 3; do echo "line $i"; done'

# fake: the three lines printed at once by one echo
docker run -d --name chatty busybox sh -c 'printf "line 1\nline 2\nline 3\n"; sleep 1000'

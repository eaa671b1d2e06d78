# Shortcuts for "scratchpad is stopped and its /data.txt says hello".

# fake: a one-shot container that writes the file and exits
docker run --name scratchpad busybox sh -c 'echo hello > /data.txt'

# fake: created (never started) and the file copied in
docker create --name scratchpad busybox sleep 1000
echo hello > /tmp/data.txt
docker cp /tmp/data.txt scratchpad:/data.txt
rm /tmp/data.txt

# fake: still running with the file
docker run -d --name scratchpad busybox sleep 1000
docker exec scratchpad sh -c 'echo hello > /data.txt'

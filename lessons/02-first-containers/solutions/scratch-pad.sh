docker run -d --name scratchpad busybox sleep 1000
docker exec scratchpad sh -c 'echo hello > /data.txt'
docker stop -t 1 scratchpad

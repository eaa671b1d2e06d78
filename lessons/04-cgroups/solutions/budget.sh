docker run -d --name budget -m 128m --cpu-shares 256 busybox sleep 1000

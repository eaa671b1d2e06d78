# Shortcuts for "alpha and beta run on the default bridge with their own IPs".

# fake: both on a network of their own
docker network create pair
docker run -d --name alpha --network pair busybox sleep 1000
docker run -d --name beta --network pair busybox sleep 1000

# fake: beta inside alpha's network namespace
docker run -d --name alpha busybox sleep 1000
docker run -d --name beta --network container:alpha busybox sleep 1000

# fake: beta on the bridge and on a second network too
docker network create extra
docker run -d --name alpha busybox sleep 1000
docker run -d --name beta busybox sleep 1000
docker network connect extra beta

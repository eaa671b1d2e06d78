# Shortcuts for "on appnet, db is reachable by name".

# fake: another Redis on appnet answering to the alias db, the real db elsewhere
docker network create appnet
docker run -d --name db redis
docker run -d --name cache --network appnet --network-alias db redis
sleep 1

# fake: a busybox container named db on appnet
docker network create appnet
docker run -d --name db --network appnet busybox sleep 1000

# fake: db on the default bridge, appnet empty
docker network create appnet
docker run -d --name db redis

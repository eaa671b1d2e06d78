# Shortcuts for "the service cache runs on the overlay network appnet".

# fake: a plain container named cache on the overlay
docker network create -d overlay --attachable appnet
docker run -d --name cache --network appnet redis

# fake: a service cache off the network, and a container answering to the alias cache on it
docker network create -d overlay --attachable appnet
docker service create --name cache redis
docker run -d --name notcache --network appnet --network-alias cache redis

# fake: a bridge network called appnet
docker network create appnet
docker run -d --name cache --network appnet redis

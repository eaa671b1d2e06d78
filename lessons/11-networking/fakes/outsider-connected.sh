# Shortcuts for "outsider is on both othernet and appnet and reaches db".

# fake: outsider only on appnet
docker network create othernet
docker run -d --name outsider --network appnet busybox sleep 1000

# fake: outsider only on othernet, with a hosts entry for db
docker network create othernet
docker run -d --name outsider --network othernet --add-host "db:$(docker inspect -f '{{.NetworkSettings.Networks.appnet.IPAddress}}' db)" busybox sleep 1000

# Shortcuts for "linked knows alpha as oldfriend".

# fake: a hosts entry with --add-host instead of --link (the audit's shortcut)
docker run -d --name linked --add-host "oldfriend:$(docker inspect -f '{{.NetworkSettings.IPAddress}}' alpha)" busybox sleep 1000

# fake: linked to beta under that name
docker run -d --name linked --link beta:oldfriend busybox sleep 1000

# fake: the hosts line written from inside
docker run -d --name linked busybox sh -c "echo '$(docker inspect -f '{{.NetworkSettings.IPAddress}}' alpha) oldfriend' >> /etc/hosts && exec sleep 1000"

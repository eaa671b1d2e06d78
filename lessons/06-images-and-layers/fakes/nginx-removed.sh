# Shortcuts for "the nginx image is gone, after the containers that used it".

# fake: forced off while cow and fresh still use it (the name goes, the image stays)
docker rmi -f nginx

# fake: the name moved to another tag, then removed
docker tag nginx mynginx
docker rmi nginx

# fake: forced off, then the untagged image pruned (prune keeps images in use)
docker rmi -f nginx
docker image prune -f

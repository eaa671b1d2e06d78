# Shortcuts for "nginx and redis share their bottom layer".

# fake: nginx tagged as redis (same image, so the same layers)
docker tag nginx redis

# fake: a build on top of nginx tagged redis
printf 'FROM nginx\nRUN echo redis > /redis.txt\n' | docker build -q -t redis -

# fake: a commit of an nginx container tagged redis
docker run --name notredis nginx true
docker commit notredis redis

# Shortcuts for "anon has an anonymous volume at /var/lib/registry, from the image's VOLUME".

# fake: a named volume mounted over the image's VOLUME path
docker run -d --name anon -v regdata:/var/lib/registry registry

# fake: a volume made by hand with a hex name that looks like an anonymous one
v=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
docker volume create "$v"
docker run -d --name anon -v "$v":/var/lib/registry registry

# fake: a tmpfs at the path instead of a volume
docker run -d --name anon --mount type=tmpfs,target=/var/lib/registry registry

# fake: an anonymous volume at the path, but in a busybox container
docker run -d --name anon -v /var/lib/registry busybox sleep 1000

# Shortcuts for "mounted has the notes volume and a read-only bind of www".

# fake: the same mounts with -v instead of --mount
docker run -d --name mounted -v notes:/notes -v "$HOME/www":/www:ro busybox sleep 1000

# fake: the bind left writable
docker run -d --name mounted --mount type=volume,source=notes,target=/notes --mount type=bind,source="$HOME/www",target=/www busybox sleep 1000

# fake: another volume at /notes
docker run -d --name mounted --mount type=volume,source=other,target=/notes --mount type=bind,source="$HOME/www",target=/www,readonly busybox sleep 1000

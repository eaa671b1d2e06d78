# Shortcuts for "redis-data holds a saved Redis database with the key, and cache is gone".

# fake: a file that merely contains the word lesson
docker run --rm -v redis-data:/data busybox sh -c 'echo lesson data > /data/dump.rdb'

# fake: a throwaway Redis wrote the key; there never was a container cache
docker run --rm -v redis-data:/data redis sh -c 'redis-server --dir /data --daemonize yes >/dev/null && timeout 20 sh -c "until redis-cli ping >/dev/null 2>&1; do sleep 0.2; done" && redis-cli set lesson data && redis-cli save'

# fake: cache still there, key saved
docker run -d --name cache -v redis-data:/data redis
sleep 2
docker exec cache redis-cli set lesson data
docker exec cache redis-cli save

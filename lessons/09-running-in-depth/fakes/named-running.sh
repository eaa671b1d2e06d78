# Shortcuts for "a container called named is running".

# fake: created but not started
docker create --name named busybox sleep 1000

# fake: another image under that name
docker run -d --name named nginx

# fake: a throwaway --rm container named named that has already gone
docker run --rm --name named busybox true

# Shortcuts for "the image was pulled back by its digest".

# fake: only the tag removed, nothing pulled
docker rmi localhost:5000/tools/busybox:1.0

# fake: the tag removed, then pulled back by tag and removed again
docker rmi localhost:5000/tools/busybox:1.0
docker pull -q localhost:5000/tools/busybox:1.0
docker rmi localhost:5000/tools/busybox:1.0

# fake: the tag removed, busybox pulled by digest from the mirror instead
docker rmi localhost:5000/tools/busybox:1.0
docker pull -q "$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' busybox | grep '^busybox@')"

# Shortcuts for "viacurl, made through the API, printed its line".

# fake: docker run instead of the API
docker run --name viacurl busybox echo "made by curl"

# fake: docker create and start instead of the API
docker create --name viacurl busybox echo "made by curl"
docker start -a viacurl

# fake: created through the API, but printing something else
curl -s --unix-socket /var/run/docker.sock -X POST -H 'Content-Type: application/json' -d '{"Image": "busybox", "Cmd": ["echo", "made by hand"]}' 'http://localhost/containers/create?name=viacurl'
curl -s --unix-socket /var/run/docker.sock -X POST http://localhost/containers/viacurl/start
sleep 1

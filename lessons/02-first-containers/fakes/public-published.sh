# Shortcuts for "nginx in public answers on the host's port 8080".

# fake: -P, which publishes port 80 on a port Docker picks
docker run -d --name public -P nginx

# fake: the ports the wrong way round (container port 8080, where nothing listens)
docker run -d --name public -p 8080:8080 nginx

# fake: another web server published on 8080
docker run -d --name public -p 8080:80 httpd
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8080

# fake: nginx without -p, and a busybox httpd on the host's network serving a copy of its page
docker run -d --name public nginx
mkdir -p /tmp/berth-www && docker exec public cat /usr/share/nginx/html/index.html > /tmp/berth-www/index.html
docker run -d --name copycat --network host -v /tmp/berth-www:/www busybox httpd -f -p 8080 -h /www
# undo:
rm -rf /tmp/berth-www

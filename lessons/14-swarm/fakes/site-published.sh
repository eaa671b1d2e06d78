# Shortcuts for "the service site answers on port 8080".

# fake: a plain container named site
docker run -d --name site -p 8080:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null localhost:8080

# fake: an unpublished service site, and a plain nginx container on 8080
docker service create --name site nginx
docker run -d --name web8080 -p 8080:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null localhost:8080

# fake: a service site on 8080 that is busybox httpd with a Welcome to nginx page
docker service create --name site --publish published=8080,target=80,mode=host busybox sh -c 'mkdir /www && echo "<h1>Welcome to nginx!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null localhost:8080

# Shortcuts for "shop serves on 8090 with STAGE=test".

# fake: busybox named shop with the variable, serving a page that says Welcome to nginx
docker run -d --name shop -e STAGE=test -p 8090:80 busybox sh -c 'mkdir /www && echo "<h1>Welcome to nginx!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8090

# fake: shop with the variable but no published port, another nginx on 8090
docker run -d --name shop -e STAGE=test nginx
docker run -d --name front8090 -p 8090:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8090

# fake: shop on 8090 with the variable set only inside a shell
docker run -d --name shop -p 8090:80 nginx sh -c 'export STAGE=test; exec nginx -g "daemon off;"'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8090

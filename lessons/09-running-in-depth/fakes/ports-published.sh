# Shortcuts for "web1 answers on 8082 and web2 has a port picked by Docker".

# fake: web2 given a fixed port instead of -P
docker run -d --name web1 -p 8082:80 httpd
docker run -d --name web2 -p 32799:80 httpd
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8082

# fake: busybox httpd pages that say It works!
docker run -d --name web1 -p 8082:80 busybox sh -c 'mkdir /www && echo "<h1>It works!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
docker run -d --name web2 -P --expose 80 busybox sh -c 'mkdir /www && echo "<h1>It works!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8082

# fake: both with -P, no 8082
docker run -d --name web1 -P httpd
docker run -d --name web2 -P httpd

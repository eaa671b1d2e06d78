# Shortcuts for "site serves your edited www/index.html".

# fake: nginx without the bind mount, the edited page copied in
docker run -d --name site -p 8083:80 nginx
cp ~/www/index.html /tmp/index.html && echo '<p>edited outside the container</p>' >> /tmp/index.html
docker cp /tmp/index.html site:/usr/share/nginx/html/index.html
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8083

# fake: bound read-write and edited from inside the container
docker run -d --name site -p 8083:80 -v "$HOME/www":/usr/share/nginx/html nginx
docker exec site sh -c 'echo "<p>edited outside the container</p>" >> /usr/share/nginx/html/index.html'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8083

# fake: busybox httpd on the same folder
echo '<p>edited outside the container</p>' >> ~/www/index.html
docker run -d --name site -p 8083:80 -v "$HOME/www":/www:ro busybox httpd -f -p 80 -h /www
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8083

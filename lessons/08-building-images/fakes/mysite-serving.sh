# Shortcuts for "your page answers on localhost:8081".

# fake: plain nginx with the site folder mounted over its pages
docker run -d --name mysite -p 8081:80 -v "$HOME/site":/usr/share/nginx/html:ro nginx
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8081

# fake: busybox httpd serving a copy of the page
docker run -d --name mysite -p 8081:80 -v "$HOME/site":/www:ro busybox httpd -f -p 80 -h /www
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8081

# fake: nginx with the page copied in
docker run -d --name mysite -p 8081:80 nginx
docker cp ~/site/index.html mysite:/usr/share/nginx/html/index.html
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8081

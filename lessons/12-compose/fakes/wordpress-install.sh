# Shortcuts for "WordPress shows its installation page on localhost:8085".

# fake: busybox httpd serving a page titled WordPress
docker run -d --name wp -p 8085:80 busybox sh -c 'mkdir -p /www/wp-admin && echo "<title>WordPress &rsaquo; Installation</title>" > /www/wp-admin/install.php && exec httpd -f -p 80 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8085/wp-admin/install.php

# fake: the same page from a container labelled as the wp project's wordpress
docker run -d --name wp -p 8085:80 --label com.docker.compose.project=wp --label com.docker.compose.service=wordpress busybox sh -c 'mkdir -p /www/wp-admin && echo "<title>WordPress &rsaquo; Installation</title>" > /www/wp-admin/install.php && exec httpd -f -p 80 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8085/wp-admin/install.php

# fake: nginx with a copied page
docker run -d --name wp -p 8085:80 nginx sh -c 'mkdir -p /usr/share/nginx/html/wp-admin && echo "<title>WordPress</title>" > /usr/share/nginx/html/wp-admin/install.php && exec nginx -g "daemon off;"'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8085/wp-admin/install.php

# Shortcuts for "a registry answers on localhost:5000".

# fake: busybox httpd serving a folder called v2 on :5000 (the audit's shortcut)
docker run -d --name registry -p 5000:5000 busybox sh -c 'mkdir -p /www/v2 && echo "{}" > /www/v2/index.html && exec httpd -f -p 5000 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:5000/v2/

# fake: the same httpd from busybox tagged as registry
docker pull -q busybox
docker tag busybox registry
docker run -d --name registry -p 5000:5000 registry sh -c 'mkdir -p /www/v2 && echo "{}" > /www/v2/index.html && exec httpd -f -p 5000 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:5000/v2/

# fake: nginx on :5000 with a v2 page
docker run -d --name registry -p 5000:80 nginx sh -c 'mkdir -p /usr/share/nginx/html/v2 && echo "{}" > /usr/share/nginx/html/v2/index.html && exec nginx -g "daemon off;"'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:5000/v2/

# Shortcuts for the least-privilege exercise (webcap serves nginx's page with only the capabilities it needs).

# fake: every capability dropped and none added back: "Up", but its workers die
docker run -d --name webcap --cap-drop ALL nginx

# fake: nginx with the default capabilities
docker run -d --name webcap nginx

# fake: busybox httpd with a Welcome to nginx page and the three capabilities
docker run -d --name webcap --cap-drop ALL --cap-add CHOWN --cap-add SETGID --cap-add SETUID busybox sh -c 'mkdir /www && echo "<h1>Welcome to nginx!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'

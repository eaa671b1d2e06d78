# Shortcuts for "node2 runs far".

# fake: far started on node1 instead
docker run -d --name far -p 8087:80 nginx

# fake: far on node2, but not published
docker -H tcp://node2:2375 run -d --name far nginx

# fake: busybox httpd on node2 named far
docker -H tcp://node2:2375 run -d --name far -p 8087:80 busybox sh -c 'mkdir /www && echo "<h1>Welcome to nginx!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'

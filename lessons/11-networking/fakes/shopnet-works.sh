# Shortcuts for "client fetches front's page by name on shopnet".

# fake: the default bridge and --link instead of a network
docker run -d --name front nginx
docker run -d --name client --link front busybox sleep 1000

# fake: busybox httpd named front with a Welcome to nginx page
docker network create shopnet
docker run -d --name front --network shopnet busybox sh -c 'mkdir /www && echo "<h1>Welcome to nginx!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
docker run -d --name client --network shopnet busybox sleep 1000

# fake: both on appnet, no shopnet at all
docker run -d --name front --network appnet nginx
docker run -d --name client --network appnet busybox sleep 1000

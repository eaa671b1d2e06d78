# Shortcuts for "a new container fresh still sees index.html".

# fake: the listing typed by hand
docker run --name fresh busybox echo index.html

# fake: nginx, but echoing instead of listing
docker run --name fresh nginx echo index.html

# fake: busybox with a hand-made index.html to list
docker run --name fresh busybox sh -c 'mkdir -p /usr/share/nginx/html && touch /usr/share/nginx/html/index.html && ls /usr/share/nginx/html'

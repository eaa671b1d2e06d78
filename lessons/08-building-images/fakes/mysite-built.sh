# Shortcuts for "mysite:1 exists and carries your page" (built from a Dockerfile).

# fake: an nginx container edited by hand and committed (the audit's shortcut)
docker run --name edited nginx sh -c 'cp /dev/null /usr/share/nginx/html/index.html'
docker cp ~/site/index.html edited:/usr/share/nginx/html/index.html
docker commit edited mysite:1

# fake: nginx tagged mysite:1
docker pull -q nginx
docker tag nginx mysite:1

# fake: a build that writes the page with RUN instead of copying the file
printf 'FROM nginx\nRUN echo "Built with a Dockerfile" > /usr/share/nginx/html/index.html\n' | docker build -q -t mysite:1 -

# Shortcuts for "mysite:2 came from the cache, and mysite:3 has the changed page".

# fake: the changed page committed into a container of mysite:1
docker tag mysite:1 mysite:2
docker run --name edit3 mysite:1 sh -c 'echo "<p>changed</p>" >> /usr/share/nginx/html/index.html'
docker commit edit3 mysite:3

# fake: built without the cache, then edited and rebuilt
docker build -q --no-cache -t mysite:2 site
echo '<p>changed</p>' >> site/index.html
docker build -q -t mysite:3 site

# fake: mysite:1 tagged as 2 and 3, nothing changed
docker tag mysite:1 mysite:2
docker tag mysite:1 mysite:3

# Shortcuts for "site now runs httpd and says It works!".

# fake: the service removed and created again from httpd, no rollout
docker service rm site
until [ -z "$(docker ps -aq --filter label=com.docker.swarm.service.name=site)" ]; do sleep 1; done
docker service create --name site --publish published=8080,target=80,mode=host httpd
# undo:
docker service rm site
until [ -z "$(docker ps -aq --filter label=com.docker.swarm.service.name=site)" ]; do sleep 1; done
docker service create --name site --publish published=8080,target=80,mode=host nginx

# fake: It works! written into the nginx task's page
t=$(docker ps -q --filter label=com.docker.swarm.service.name=site)
docker exec "$t" sh -c 'cp /usr/share/nginx/html/index.html /tmp/index.bak && echo "<h1>It works!</h1>" > /usr/share/nginx/html/index.html'
# undo:
docker exec "$(docker ps -q --filter label=com.docker.swarm.service.name=site)" sh -c 'cp /tmp/index.bak /usr/share/nginx/html/index.html'

# fake: the image updated but the port moved to a plain httpd container
docker service update --image httpd --publish-rm published=8080,target=80,mode=host site
docker run -d --name h8080 -p 8080:80 httpd
curl -s --retry 5 --retry-all-errors -o /dev/null localhost:8080
# undo:
docker rm -f h8080
docker service update --image nginx --publish-add published=8080,target=80,mode=host site

# Shortcuts for "node1 reaches far's page at node2:8087".

# fake node=node2: another name published on node2's 8087
docker run -d --name near -p 8087:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8087

# fake: far on node1, so http://localhost:8087 works but node2:8087 does not
docker run -d --name far -p 8087:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8087

# fake: far on node2 publishing another port
docker -H tcp://node2:2375 run -d --name far -p 8088:80 nginx

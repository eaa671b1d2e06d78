# Shortcuts for "the registry lists myteam/web with tag v1".

# fake: tagged but never pushed
docker pull -q nginx
docker tag nginx localhost:5000/myteam/web:v1

# fake: busybox pushed under that name
docker tag busybox localhost:5000/myteam/web:v1
docker push localhost:5000/myteam/web:v1

# fake: a hand-written tags list served by busybox httpd in place of the registry
docker stop registry
docker run -d --name fakereg -p 5000:5000 busybox sh -c 'mkdir -p /www/v2/myteam/web/tags && echo "{\"name\":\"myteam/web\",\"tags\":[\"v1\"]}" > /www/v2/myteam/web/tags/list && exec httpd -f -p 5000 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:5000/v2/myteam/web/tags/list

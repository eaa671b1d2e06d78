# Shortcuts for "the registry lists tools/busybox with tag 1.0".

# fake: the registry stopped, a busybox httpd on :5000 serving a hand-written tags list (the audit's shortcut)
docker stop registry
docker run -d --name fakereg -p 5000:5000 busybox sh -c 'mkdir -p /www/v2/tools/busybox/tags && echo "{\"name\":\"tools/busybox\",\"tags\":[\"1.0\"]}" > /www/v2/tools/busybox/tags/list && exec httpd -f -p 5000 -h /www'
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:5000/v2/tools/busybox/tags/list

# fake: another image pushed under that name
docker pull -q nginx
docker tag nginx localhost:5000/tools/busybox:1.0
docker push localhost:5000/tools/busybox:1.0

# fake: busybox pushed, but to another repository
docker tag busybox localhost:5000/tools/other:1.0
docker push localhost:5000/tools/other:1.0

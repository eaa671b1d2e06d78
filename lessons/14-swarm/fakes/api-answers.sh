# Shortcuts for "api answers by name on appnet".

# fake: a plain httpd container answering to the alias api
docker run -d --name notapi --network appnet --network-alias api httpd
sleep 2

# fake: a service api that is busybox httpd with an It works! page
docker service create --name api --replicas 3 --network appnet --endpoint-mode dnsrr busybox sh -c 'mkdir /www && echo "<h1>It works!</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'

# fake: the service without DNS round robin
docker service create --name api --replicas 3 --network appnet httpd

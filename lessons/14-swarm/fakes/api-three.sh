# Shortcuts for "api runs three tasks on appnet".

# fake: three tasks, not on appnet
docker service create --name api --replicas 3 --endpoint-mode dnsrr httpd

# fake: on appnet, one task
docker service create --name api --network appnet --endpoint-mode dnsrr httpd

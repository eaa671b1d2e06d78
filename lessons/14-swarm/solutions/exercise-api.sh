docker service create --name api --replicas 3 --network appnet --endpoint-mode dnsrr httpd

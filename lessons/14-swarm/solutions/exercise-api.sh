docker service create --name api --replicas 4 -p 8090:80 httpd

docker -H tcp://node2:2375 run -d --name far -p 8087:80 nginx

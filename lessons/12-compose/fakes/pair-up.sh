# Shortcuts for "the pair project runs web on 8086 and probe".

# fake: two containers started by hand with the project label
docker run -d --name pair_web_1 -p 8086:80 --label com.docker.compose.project=pair --label com.docker.compose.service=web nginx
docker run -d --name pair_probe_1 --label com.docker.compose.project=pair --label com.docker.compose.service=probe busybox sleep 100000
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8086

# fake: a compose file whose web is busybox httpd with a Welcome to nginx page
mkdir -p ~/pair && cd ~/pair
printf 'version: "3"\nservices:\n  web:\n    image: busybox\n    command: sh -c "mkdir /www && echo Welcome to nginx > /www/index.html && exec httpd -f -p 80 -h /www"\n    ports:\n      - "8086:80"\n  probe:\n    image: busybox\n    command: sleep 100000\n' > docker-compose.yml
docker-compose up -d
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8086

# fake: web on 8086 from compose, probe started by hand with the label
mkdir -p ~/pair && cd ~/pair
printf 'version: "3"\nservices:\n  web:\n    image: nginx\n    ports:\n      - "8086:80"\n' > docker-compose.yml
docker-compose up -d
docker run -d --name pair_probe_1 --label com.docker.compose.project=pair --label com.docker.compose.service=probe busybox sleep 100000
curl -s --retry 5 --retry-all-errors -o /dev/null http://localhost:8086

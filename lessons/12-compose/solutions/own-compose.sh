mkdir -p ~/pair && cd ~/pair
cat > docker-compose.yml <<'YAML'
version: "3"
services:
  web:
    image: nginx
    ports:
      - "8086:80"
  probe:
    image: busybox
    command: sleep 100000
YAML
docker-compose up -d

docker run -d --name cache -v redis-data:/data redis
sleep 2
docker exec cache redis-cli set lesson data
docker exec cache redis-cli save
docker rm -f cache

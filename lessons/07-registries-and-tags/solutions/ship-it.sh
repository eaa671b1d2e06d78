docker pull nginx
docker tag nginx localhost:5000/myteam/web:v1
docker push localhost:5000/myteam/web:v1

docker run -d --name shop -e STAGE=test -p 8090:80 nginx
sleep 1

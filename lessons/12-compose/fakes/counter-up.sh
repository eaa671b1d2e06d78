# Shortcuts for "the counter app answers and counts".

# fake: only redis started
cd ~/counter && docker-compose up -d redis

# fake: containers started by hand with Compose's labels copied on
docker run -d --name counter_redis_1 --label com.docker.compose.project=counter --label com.docker.compose.service=redis --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=False redis
docker run -d --name counter_web_1 -p 8000 --label com.docker.compose.project=counter --label com.docker.compose.service=web --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=False busybox sh -c 'mkdir /www && echo "Hello! I have been seen 1 times." > /www/index.html && exec httpd -f -p 8000 -h /www'

# fake: the project brought up under another name
cd ~/counter && docker-compose -p other up -d redis

# Shortcuts for "three web containers run in the counter project".

# fake: two extra containers with hand-made labels (the audit's shortcut)
for n in 2 3; do docker run -d --label com.docker.compose.project=counter --label com.docker.compose.service=web --label com.docker.compose.container-number=$n busybox sleep 1000; done

# fake: two extra copies of web's image with its labels, but not made by Compose
img=$(docker inspect -f '{{.Config.Image}}' "$(cd ~/counter && docker-compose ps -q web)")
for n in 2 3; do docker run -d --label com.docker.compose.project=counter --label com.docker.compose.service=web --label com.docker.compose.container-number=$n "$img"; done

# fake: scaled to two only
cd ~/counter && docker-compose up -d --scale web=2

# Shortcuts for "envdemo has MODE, GREETING and COLOUR set".

# fake: variables exported inside the container's shell, not given to the container
docker run -d --name envdemo busybox sh -c 'export MODE=training COLOUR=teal; exec sleep 1000'

# fake: only -e MODE, the env file forgotten
docker run -d --name envdemo -e MODE=training busybox sleep 1000

# fake: only the env file, MODE forgotten
docker run -d --name envdemo --env-file app.env busybox sleep 1000

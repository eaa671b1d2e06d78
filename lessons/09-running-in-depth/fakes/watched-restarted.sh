# Shortcuts for "the engine logged a restart of watched, which still runs".

# fake: stopped and started by hand (no restart event)
docker run -d --name watched busybox sleep 1000
docker stop -t 1 watched
docker start watched

# fake: another container restarted, then renamed to watched
docker run -d --name other busybox sleep 1000
docker restart -t 1 other
docker rename other watched

# fake: a container that the restart policy brings back (start events, no restart)
docker run -d --name watched --restart always busybox sh -c 'sleep 1; exit 1'
sleep 3

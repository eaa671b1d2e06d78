# Shortcuts for "the engine restarted phoenix three times, then gave up".

# fake: no policy, started again by hand three times (four lines in the log)
docker run -d --name phoenix busybox sh -c 'echo "started at $(date +%T)"; exit 3'
docker wait phoenix
for i in 1 2 3; do docker start phoenix; docker wait phoenix; done

# fake: on-failure:3, but the command exits 0, so nothing restarts it
docker run -d --name phoenix --restart on-failure:3 busybox sh -c 'echo "started at $(date +%T)"; sleep 1; exit 0'
docker wait phoenix

# fake: four lines printed by one run, with the policy set
docker run -d --name phoenix --restart on-failure:3 busybox sh -c 'for i in 1 2 3 4; do echo "started at $(date +%T)"; done; exit 0'
docker wait phoenix

# fake: always, which never gives up
docker run -d --name phoenix --restart always busybox sh -c 'echo "started at $(date +%T)"; exit 3'
sleep 3

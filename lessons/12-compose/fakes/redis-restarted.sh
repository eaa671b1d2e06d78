# Shortcuts for "the engine restarted the counter project's redis container".

# fake: restarted by hand with docker restart (not a restart by the policy)
cd ~/counter
docker restart "$(docker-compose ps -q redis)"

# fake: restarted by Compose
cd ~/counter
docker-compose restart redis

# fake: killed instead of crashing (a manual stop, which the policy respects)
cd ~/counter
docker kill "$(docker-compose ps -q redis)"

# fake: a new redis container made with the same name (a fresh container has no restarts)
cd ~/counter
docker-compose up -d --force-recreate --no-deps redis

# Shortcuts for "pinger runs five tasks, and one task was replaced".

# fake: scaled, then every task replaced by a forced update (the audit's shortcut)
docker service scale pinger=5
docker service update --force --update-monitor 1s pinger
# undo:
docker service scale pinger=3

# fake: scaled up past five and back down
docker service scale pinger=6
docker service scale pinger=5
# undo:
docker service scale pinger=3

# fake: only scaled
docker service scale pinger=5
# undo:
docker service scale pinger=3

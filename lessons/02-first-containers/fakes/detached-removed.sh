# Shortcuts for "the container detached no longer exists".

# fake: renamed out of the way instead of removed
docker rename detached gone

# fake: only stopped
docker stop -t 1 detached

# fake: killed but not removed
docker kill detached

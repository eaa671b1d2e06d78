# Shortcuts for "a container named first ran and exited cleanly" (lessons/FORMAT.md, Fakes).

# fake: a container named first that ran something else
docker run --name first busybox true

# fake: created with the right command but never started
docker create --name first busybox echo "hello from a container"

# fake: the line printed by another image
docker run --name first debian echo "hello from a container"

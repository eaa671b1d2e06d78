# Shortcuts for "explorer ran an interactive debian shell".

# fake: created, never run (the audit's shortcut)
docker create --name explorer debian

# fake: run, but without -it
docker run --name explorer debian true

# fake: created with -it but never started
docker create -it --name explorer debian bash

# fake: an interactive shell of another image
docker run -dit --name explorer busybox sh

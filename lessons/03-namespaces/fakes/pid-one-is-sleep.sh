# Shortcuts for "in pidns, PID 1 is sleep".

# fake engine=rootful: the host's PID namespace
docker run -d --name pidns --pid host busybox sleep 1000

# fake: another image whose PID 1 is not sleep
docker run -d --name pidns nginx

# fake: sleep, but not the one the next steps look for
docker run -d --name pidns busybox sleep 999

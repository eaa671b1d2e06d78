#!/bin/bash
# Berth learner engine entrypoint. Runs as root in the outer container only long enough to
# prepare devices and files, then becomes the unprivileged user `learner` for good.
# The engine itself runs rootless: "root" inside it is the learner's uid on the outside.
# Each node gets its own learner uid and sub-id range from the server (BERTH_LEARNER_UID,
# BERTH_SUBUID_BASE): kernel per-user accounts (key quota, inotify instances, RLIMIT_NPROC, the user
# keyring) are per host uid, so no two learners may share one.
set -euo pipefail

LEARNER=learner
UID_N="${BERTH_LEARNER_UID:-1000}"
SUBUID_BASE="${BERTH_SUBUID_BASE:-100000}"
# The runtime folder keeps the image's path (/run/user/1000) whatever the uid: the server, the shell
# profile and the overlay fix find the engine's socket there.
RUNDIR=/run/user/1000
DATA=/home/$LEARNER/.local/share/docker

log() { echo "berth: $*"; }

# Inner `docker run --privileged` mounts a fresh read-write sysfs, which the kernel refuses while the
# sysfs we were given is read-only. Files under /sys stay owned by real root, so uid 1000 gains nothing.
mount -o remount,rw /sys

if [ "$UID_N" != "$(id -u $LEARNER)" ]; then
  groupmod -g "$UID_N" "$LEARNER"
  usermod -u "$UID_N" -g "$UID_N" "$LEARNER"
  chown -R "$LEARNER:$LEARNER" "$RUNDIR" /var/lib/docker /run/docker
fi

# /var/run/docker.sock is where Docker's documentation, the lessons and every rootful host keep the engine's
# socket; here it points at the rootless engine's, which only the learner can open.
ln -sfn "$RUNDIR/docker.sock" /run/docker.sock

# slirp4netns needs the tun device; it was passed in with --device and is only usable by root until now.
chmod 666 /dev/net/tun

# A distinct subordinate id range per sandbox keeps nested containers of different sandboxes on
# different host uids (see SECURITY.md).
echo "$LEARNER:$SUBUID_BASE:65536" > /etc/subuid
echo "$LEARNER:$SUBUID_BASE:65536" > /etc/subgid

# The home may be a fresh, empty file system of this node's own (see sandbox-server/engine/disks.ts).
[ -f /home/$LEARNER/.bashrc ] || cp -a /etc/skel/. /home/$LEARNER/
grep -q profile.d/berth.sh /home/$LEARNER/.bashrc || echo 'source /etc/profile.d/berth.sh' >> /home/$LEARNER/.bashrc
chown "$LEARNER:$LEARNER" /home/$LEARNER/.bashrc /home/$LEARNER/.profile /home/$LEARNER/.bash_logout 2>/dev/null || true
mkdir -p "$RUNDIR" "$DATA" /home/$LEARNER/.config/docker
chown "$LEARNER:$LEARNER" "$RUNDIR" "$DATA" /home/$LEARNER /home/$LEARNER/.config /home/$LEARNER/.config/docker /home/$LEARNER/.local /home/$LEARNER/.local/share
chmod 700 "$RUNDIR"

# Engine configuration: the registry mirror makes `docker pull nginx` work offline.
mirror_json='[]'; insecure_json='[]'
if [ -n "${BERTH_MIRROR:-}" ]; then
  mirror_json="[\"http://$BERTH_MIRROR\"]"; insecure_json="[\"$BERTH_MIRROR\"]"
fi
cat > /home/$LEARNER/.config/docker/daemon.json <<JSON
{
  "registry-mirrors": $mirror_json,
  "insecure-registries": $insecure_json,
  "storage-driver": "overlay2",
  "log-opts": { "max-size": "5m", "max-file": "2" },
  "features": { "buildkit": false }
}
JSON
chown "$LEARNER:$LEARNER" /home/$LEARNER/.config/docker/daemon.json

# Once the engine answers: strip the last setuid bits (newuidmap/newgidmap are only needed by
# rootlesskit at start), optionally expose the engine API to the session's other nodes, say ready.
(
  for _ in $(seq 1 600); do
    if [ -S "$RUNDIR/docker.sock" ] && DOCKER_HOST="unix://$RUNDIR/docker.sock" docker version >/dev/null 2>&1; then
      chmod ug-s /usr/bin/newuidmap /usr/bin/newgidmap
      if [ "${BERTH_REMOTE_API:-0}" = 1 ]; then
        setpriv --reuid $UID_N --regid $UID_N --init-groups --no-new-privs \
          socat TCP-LISTEN:2375,fork,reuseaddr UNIX-CONNECT:"$RUNDIR/docker.sock" &
      fi
      # Swarm's ports (managers 2377, gossip 7946, VXLAN 4789/udp) are forwarded from the node's own address
      # into the engine's network namespace, so that the session's other nodes can join this one.
      api=$(ls -d /tmp/rootlesskit*/api.sock 2>/dev/null | head -n 1)
      if [ -n "$api" ]; then
        for p in 2377/tcp 7946/tcp 7946/udp 4789/udp; do
          rootlessctl --socket "$api" add-ports "0.0.0.0:${p%/*}:${p%/*}/${p#*/}" >/dev/null 2>&1 || log "could not forward $p"
        done
      fi
      # Overlay networks between this session's nodes need one kernel setting that Docker does not make
      # (see the script); it runs as the learner, without new privileges.
      setpriv --reuid $UID_N --regid $UID_N --init-groups --no-new-privs /usr/local/bin/berth-overlay-fix &
      log "engine ready"
      exit 0
    fi
    sleep 0.1
  done
  log "engine did not start within 60 s"
) &

export HOME=/home/$LEARNER USER=$LEARNER XDG_RUNTIME_DIR=$RUNDIR
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
cd "$HOME"
exec setpriv --reuid $UID_N --regid $UID_N --init-groups \
  /usr/local/bin/dockerd-rootless.sh --config-file /home/$LEARNER/.config/docker/daemon.json

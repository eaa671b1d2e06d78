#!/bin/bash
# Turns a debootstrapped Debian 13 minbase tree into the learner node's root file system.
# Usage: build-rootfs.sh ROOT MIRROR [SECURITY_MIRROR]. Runs in its own mount namespace (see image.ts),
# so the /proc and /dev mounts below disappear with it even when a step fails.
set -euo pipefail
root=$1 mirror=$2 security=${3:-}
here=$(dirname "$(readlink -f "$0")")

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Package scripts must not try to start services in the build tree.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# Keep docs out except man pages, which lessons point to.
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n' > "$root/etc/dpkg/dpkg.cfg.d/berth-nodoc"
{
  echo "deb $mirror trixie main"
  echo "deb $mirror trixie-updates main"
  [ -z "$security" ] || echo "deb $security trixie-security main"
} > "$root/etc/apt/sources.list"

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
in_root apt-get update -qq
# shellcheck disable=SC2046
in_root apt-get install -y -qq --no-install-recommends $(grep -v '^#' "$here/packages.txt")

# The learner's account: docker works without sudo (group docker = root of this node's engine, which is
# unprivileged on the host: see SECURITY.md).
in_root useradd --create-home --uid 1000 --shell /bin/bash --groups docker learner
install -m 755 "$here/init" "$root/sbin/init"
install -m 755 "$here/berth-init" "$root/usr/local/sbin/berth-init"
install -m 644 "$here/bashrc" "$root/etc/profile.d/berth.sh"
for rc in "$root/root/.bashrc" "$root/home/learner/.bashrc"; do
  grep -q profile.d/berth.sh "$rc" || echo '. /etc/profile.d/berth.sh' >> "$rc"
done
mkdir -p "$root/etc/berth" "$root/etc/docker"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"

# Smaller, and the same for every build of one recipe: no package lists, caches, logs or machine id.
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
: > "$root/etc/resolv.conf"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/*
: > "$root/etc/machine-id"

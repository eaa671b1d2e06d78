// Escape attempts. Each script prints ESCAPED if the attack worked and otherwise whatever the system
// said. They run in two places: the learner's shell (bash, the node's own learner uid) and a --privileged
// container in the learner's engine with the node's / at /host (busybox sh, root of the user namespace).
// Nothing here sends traffic beyond this machine; `{{...}}` placeholders are filled in by the test.
// `boundary: 'node'` marks a case about the node's own root (not the host): it holds where the learner is
// not root of their node (the Docker provider's rootless engine); on Incus the docker group is root of the
// node, as on any Docker host, and only the host boundary applies.
export type EscapeCase = { id: string; technique: string; script: string; boundary?: 'node' };

export const CASES: EscapeCase[] = [
  { id: 'core-pattern', technique: "write the host's kernel.core_pattern", script: `echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern 2>&1 && echo ESCAPED` },
  {
    id: 'core-pattern-umount',
    technique: 'unmount /proc/sys, then write core_pattern',
    script: `umount /proc/sys 2>&1; umount -l /proc/sys 2>&1; mkdir -p /tmp/p; mount -t proc proc /tmp/p 2>&1; echo '|/tmp/pwn' > /tmp/p/sys/kernel/core_pattern 2>&1 && echo ESCAPED; echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern 2>&1 && echo ESCAPED`,
  },
  { id: 'uevent-helper', technique: 'set /sys/kernel/uevent_helper', script: `echo /tmp/pwn > /sys/kernel/uevent_helper 2>&1 && echo ESCAPED` },
  { id: 'sysrq', technique: 'write /proc/sysrq-trigger', script: `echo h > /proc/sysrq-trigger 2>&1 && echo ESCAPED` },
  { id: 'modprobe-path', technique: 'change kernel.modprobe', script: `echo /tmp/pwn > /proc/sys/kernel/modprobe 2>&1 && echo ESCAPED` },
  { id: 'kernel-panic-sysctl', technique: 'change a host-wide sysctl (kernel.panic)', script: `echo 7 > /proc/sys/kernel/panic 2>&1 && echo ESCAPED` },
  { id: 'drop-caches', technique: 'write vm.drop_caches', script: `echo 1 > /proc/sys/vm/drop_caches 2>&1 && echo ESCAPED` },
  {
    id: 'insmod',
    technique: 'load a kernel module',
    script: `printf 'not a module' > /tmp/m.ko; insmod /tmp/m.ko 2>&1 | grep -qiE 'exec format|invalid module|invalid argument' && echo ESCAPED; true`,
  },
  {
    id: 'block-device',
    technique: "mknod and mount the host's disk",
    script: `d=$(cat /sys/class/block/{{rootdev}}/dev 2>/dev/null); mknod /tmp/hd b \${d%%:*} \${d##*:} 2>&1; mkdir -p /tmp/hm; mount /tmp/hd /tmp/hm 2>&1 && ls /tmp/hm && echo ESCAPED; true`,
  },
  {
    id: 'dev-mem',
    technique: 'read /dev/mem',
    script: `mknod /tmp/mem c 1 1 2>&1; head -c 16 /dev/mem >/dev/null 2>&1 && echo ESCAPED; head -c 16 /tmp/mem >/dev/null 2>&1 && echo ESCAPED; true`,
  },
  { id: 'kcore', technique: 'read /proc/kcore', script: `head -c 16 /proc/kcore >/dev/null 2>&1 && echo ESCAPED; true` },
  {
    id: 'debugfs',
    technique: 'mount debugfs',
    script: `mkdir -p /tmp/dbg; mount -t debugfs none /tmp/dbg 2>&1 && ls /tmp/dbg | head -3 && echo ESCAPED; true`,
  },
  {
    id: 'release-agent',
    technique: 'cgroup v1 release_agent (CVE-2022-0492)',
    script: `mkdir -p /tmp/cg; for c in memory rdma pids cpu; do mount -t cgroup -o $c cgroup /tmp/cg 2>/dev/null && break; done; grep -q ' /tmp/cg cgroup ' /proc/mounts && echo /tmp/pwn > /tmp/cg/release_agent 2>&1 && echo ESCAPED; echo /tmp/pwn > /sys/fs/cgroup/memory/release_agent 2>&1 && echo ESCAPED; true`,
  },
  {
    id: 'runtime-overwrite',
    technique: 'overwrite the container runtime binary (CVE-2019-5736 pattern)',
    script: `for f in /usr/sbin/runc /usr/bin/runc /host/usr/sbin/runc /host/usr/bin/runc /usr/bin/containerd-shim-runc-v2 /host/usr/bin/containerd-shim-runc-v2; do [ -e $f ] && { : >> $f 2>/dev/null && echo "ESCAPED $f"; }; done; true`,
  },
  {
    id: 'proc-fd-workdir',
    technique: 'leaked fd as working directory (CVE-2024-21626 pattern)',
    script: `for n in 3 4 5 6 7 8 9; do cd /proc/self/fd/$n 2>/dev/null && cat ../../../../../../etc/hostname 2>/dev/null | grep -qx '{{hosthostname}}' && echo ESCAPED; cd /; done; true`,
  },
  {
    id: 'host-marker',
    technique: 'find a file that exists only on the host',
    script: `for r in / /host /proc/1/root /proc/self/root; do ls $r/tmp/{{marker}} 2>/dev/null && echo ESCAPED; done; find / -xdev -name '{{marker}}' 2>/dev/null | grep -q . && echo ESCAPED; true`,
  },
  // By identity (device:inode), not by path: a node's own engine may sit at /var/run/docker.sock, as the host's may.
  {
    id: 'host-docker-sock',
    technique: "reach the host engine's (or Incus') socket",
    script: `ids=' {{hostsockids}} '; for s in /var/run/docker.sock /run/docker.sock /host/var/run/docker.sock /host/run/docker.sock {{hostsock}} /host{{hostsock}} /var/lib/incus/unix.socket /host/var/lib/incus/unix.socket /run/containerd/containerd.sock /host/run/containerd/containerd.sock; do [ -S $s ] || continue; case "$ids" in *" $(stat -c %d:%i $s 2>/dev/null) "*) echo "ESCAPED $s";; esac; done; true`,
  },
  {
    id: 'host-engine-tcp',
    technique: "reach an engine API on the host's address",
    script: `wget -q -T 3 -O - http://{{gateway}}:2375/_ping 2>&1 | grep -q OK && echo ESCAPED; true`,
  },
  {
    id: 'server-port',
    technique: 'reach the Berth server from inside',
    script: `wget -q -T 3 -O - http://{{gateway}}:{{serverport}}/healthz 2>&1 | grep -q ok && echo ESCAPED; true`,
  },
  {
    id: 'other-sandbox',
    technique: "reach another learner's engine API",
    script: `wget -q -T 3 -O - http://{{otherip}}:2375/_ping 2>&1 | grep -q OK && echo ESCAPED; true`,
  },
  {
    id: 'host-processes',
    technique: "see or signal the host's processes (ptrace needs to see them first)",
    script: `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -qE 'sandbox-serve[r]/main.ts|docker[d] --host unix:///|process_ap[i]|incus/incus[d]|lxcf[s] ' && echo "ESCAPED $p"; done; true`,
  },
  // A node has a docker0 and an eth0 of its own, so names prove little; the host's interfaces' addresses do.
  {
    id: 'host-netdev',
    technique: "see the host's network interfaces",
    script: `cat /sys/class/net/*/address 2>/dev/null | grep -qixE '{{hostmacs}}' && echo ESCAPED; ls /sys/class/net | grep -q '^bs-' && echo ESCAPED; grep -q 'bs-' /proc/net/dev && echo ESCAPED; true`,
  },
  {
    id: 'shadow',
    technique: 'read root-only files of the node',
    script: `cat /etc/shadow 2>/dev/null | grep -q '^root:' && [ "$(id -u)" != 0 ] && echo ESCAPED; cat /host/etc/shadow 2>/dev/null | grep -q '^root:' && echo ESCAPED; true`,
    boundary: 'node',
  },
  {
    id: 'setuid',
    technique: 'find a setuid or setgid binary to climb back to root',
    script: `find / /host -xdev -perm /6000 -type f 2>/dev/null | grep -v '^/proc' | grep -q . && echo ESCAPED; true`,
    boundary: 'node',
  },
  {
    id: 'become-root',
    technique: 'become uid 0 of the node',
    script: `[ "$(id -u)" != 0 ] && setpriv --reuid 0 id -u 2>/dev/null | grep -qx 0 && echo ESCAPED; true`,
    boundary: 'node',
  },
  {
    id: 'kmsg',
    technique: 'read or write the kernel log',
    script: `[ -c /dev/kmsg ] && head -c 1 /dev/kmsg >/dev/null 2>&1 && echo ESCAPED; [ -c /dev/kmsg ] && echo x > /dev/kmsg 2>/dev/null && echo ESCAPED; true`,
  },
  // A cgroup already unlimited is no limit: inside a --privileged container of the learner's engine the files
  // are that container's own (nested under the node's), and raising them changes nothing. A limit going up is.
  {
    id: 'raise-own-limits',
    technique: "raise the node's own cgroup limits",
    script: `for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory.max /host/sys/fs/cgroup/memory/memory.limit_in_bytes /host/sys/fs/cgroup/pids/pids.max; do [ -e $f ] || continue; b=$(cat $f 2>/dev/null); case "$b" in ''|max|9223372036854771712) continue;; esac; v=-1; case $f in *pids.max|*memory.max) v=max;; esac; echo $v > $f 2>/dev/null; a=$(cat $f 2>/dev/null); [ "$a" != "$b" ] && echo "ESCAPED $f: $b -> $a"; done; true`,
  },
];

/** A rough CPU hog, log flood and the like are in limits.test.ts; this list is about the boundary. */
export const fill = (script: string, vars: Record<string, string>) =>
  script.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    if (!(k in vars)) throw new Error(`escape case needs {{${k}}}`);
    return vars[k];
  });

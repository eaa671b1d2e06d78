// Kernel counts that every Incus node shares, raised at bring-up so that one learner cannot use them up for
// all. Each node is a user namespace that incusd (uid 0) creates, and the kernel charges a count kept per
// user namespace (inotify instances and watches, fanotify groups and marks, namespaces of each kind) at every
// level up to the initial namespace, there to the namespace's owner: root. Every node's inotify instances
// land in one count, root's, capped at fs.inotify.max_user_instances (128 by default): one learner holding
// 128 stopped every other learner's `inotify_init` and every program on the host that runs as root.
// With the caps at the kernel's maximum, what bounds a learner is its node's memory limit (the kernel charges
// these objects to the node's memory cgroup) and its open-file limit. Host-wide tables (open files, pids) are
// raised for the same reason: a sum of nodes' limits must not meet a host-wide table before their own limits.
import { readFileSync, writeFileSync } from 'node:fs';

const INT_MAX = 2n ** 31n - 1n;
const LONG_MAX = 2n ** 63n - 1n;

/** One kernel setting: `sysctl` is its name (dots), `target` the value Berth wants at least. */
export type SharedCount = { sysctl: string; target: bigint; why: string };

export const SHARED_COUNTS: SharedCount[] = [
  { sysctl: 'fs.inotify.max_user_instances', target: INT_MAX, why: "inotify instances of all nodes count as root's (default 128)" },
  { sysctl: 'fs.inotify.max_user_watches', target: INT_MAX, why: "inotify watches of all nodes count as root's (a file watcher in one learner's dev server)" },
  { sysctl: 'fs.fanotify.max_user_groups', target: INT_MAX, why: "fanotify groups of all nodes count as root's (default 128)" },
  { sysctl: 'fs.fanotify.max_user_marks', target: INT_MAX, why: "fanotify marks of all nodes count as root's" },
  // Every open file of every node is in the host's table; processes without CAP_SYS_ADMIN get ENFILE past
  // it, and a node's memory limit holds millions of file structures. systemd sets the same on its hosts.
  { sysctl: 'fs.file-max', target: LONG_MAX, why: 'one table of open files for the whole host' },
  // Native AIO events are one host-wide count (MariaDB/MySQL need it at start). Their ring buffers are not
  // charged to the node, so this stays a finite count: the Incus production setup's figure, doubled.
  { sysctl: 'fs.aio-max-nr', target: 1_048_576n, why: 'one host-wide count of native AIO events' },
  // Every process of every node also takes a pid of the host's namespace: 32 nodes at 1024 processes
  // each already reach the default 32768.
  { sysctl: 'kernel.pid_max', target: 4_194_304n, why: "one host-wide pid space under every node's own pid limit" },
  // Namespaces of each kind are counted like inotify instances (as root's, for all nodes at once), and
  // Docker makes five or six for every container. No fs.* name for these: writing them needs
  // CAP_SYS_RESOURCE, which some hosts withhold from root (this project's VMs).
  ...['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'].map((kind) => ({
    sysctl: `user.max_${kind}_namespaces`,
    target: INT_MAX,
    why: `${kind} namespaces of all nodes count as root's`,
  })),
];

export type LiftResult = {
  raised: { sysctl: string; from: string; to: string }[];
  kept: { sysctl: string; value: string }[];
  failed: { sysctl: string; value: string; reason: string }[];
};

const file = (root: string, sysctl: string) => `${root}/${sysctl.replaceAll('.', '/')}`;

/**
 * Raises each count below its target (never lowers one an operator set higher). Logs what it set and what it
 * could not, with the kernel's reason; a count it cannot raise is reported, not fatal: nodes still start.
 * `root` is /proc/sys; tests point it at a folder of files.
 */
export function liftSharedCounts({
  log = () => {},
  counts = SHARED_COUNTS,
  root = '/proc/sys',
}: {
  log?: (m: string) => void;
  counts?: SharedCount[];
  root?: string;
} = {}): LiftResult {
  const result: LiftResult = { raised: [], kept: [], failed: [] };
  for (const { sysctl, target } of counts) {
    let value: string;
    try {
      value = readFileSync(file(root, sysctl), 'utf8').trim();
    } catch (err) {
      result.failed.push({ sysctl, value: '', reason: reason(err) });
      continue;
    }
    if (!/^\d+$/.test(value) || BigInt(value) >= target) {
      result.kept.push({ sysctl, value });
      continue;
    }
    try {
      writeFileSync(file(root, sysctl), `${target}\n`);
      result.raised.push({ sysctl, from: value, to: String(target) });
    } catch (err) {
      result.failed.push({ sysctl, value, reason: reason(err) });
    }
  }
  if (result.raised.length) log(`raised shared kernel counts: ${result.raised.map((r) => `${r.sysctl} ${r.from} → ${r.to}`).join(', ')}`);
  if (result.failed.length) {
    log(
      `could not raise shared kernel counts (one learner can use these up for every node): ${result.failed.map((f) => `${f.sysctl}${f.value ? ` (${f.value})` : ''}: ${f.reason}`).join(', ')}`,
    );
  }
  return result;
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  // EACCES on /proc/sys/user/*: the kernel allows writes only with CAP_SYS_RESOURCE, whatever the file mode.
  return code === 'EACCES' ? 'EACCES (needs CAP_SYS_RESOURCE)' : (code ?? String(err));
}

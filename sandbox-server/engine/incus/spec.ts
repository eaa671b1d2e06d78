// How a session's bridge and a learner node are described to Incus. Pure: every setting here is
// justified in runtime/engine/SECURITY.md (the Incus section) and measured on this kind of host (runtime/README.md, Incus).
import { BRIDGE_PREFIX } from '../firewall.ts';
import type { Limits } from '../node-spec.ts';
import { NODE_MIRROR_PORT } from './node-files.ts';

/** Config keys that mark what Berth made, so list() and a restarted server find them (Incus keeps user.* as given). */
export const KEY = {
  managed: 'user.berth.managed',
  role: 'user.berth.role',
  instance: 'user.berth.instance',
  sandbox: 'user.berth.sandbox',
  node: 'user.berth.node',
} as const;

export const instanceName = (sandboxId: string, node: string) => `berth-${sandboxId}-${node}`;

/** The session and node an instance name stands for (instanceName's inverse), or null for another name. */
export function parseInstanceName(name: string): { sandboxId: string; node: string } | null {
  const m = /^berth-([a-z0-9]+)-(node\d+)$/.exec(name);
  return m ? { sandboxId: m[1], node: m[2] } : null;
}

/**
 * A listing's `filter=` query (Incus evaluates it, so only matching objects come back, not every learner's on the
 * host): `key eq value` joined by `and`. Values are Berth's own ids and names; anything that would need quoting
 * in the filter language is refused rather than quoted.
 */
export function filterQuery(match: Record<string, string>): string {
  const terms = Object.entries(match).map(([k, v]) => {
    if (!/^[\w.-]+$/.test(k) || !/^[\w.-]+$/.test(v)) throw new RangeError(`cannot filter on ${k}=${v}`);
    return `${k} eq ${v}`;
  });
  return `filter=${encodeURIComponent(terms.join(' and '))}`;
}
// A known interface prefix lets one set of host firewall rules cover every session (engine/firewall.ts);
// Incus names the bridge interface after the network, and Linux allows 15 characters.
export const bridgeName = (sandboxId: string) => `${BRIDGE_PREFIX}${sandboxId}`.slice(0, 15);

// Sessions get /26 subnets of their own from a /16 beside the host engine's 10.201.0.0/16 pool
// (runtime/bootstrap/engine.ts): 1024 sessions, up to 50 nodes each.
export const SUBNET_POOL = { base: [10, 202], count: 1024 } as const;

export type Subnet = { index: number; network: string; gateway: string; prefix: 26 };

export function subnetAt(index: number): Subnet {
  if (!Number.isInteger(index) || index < 0 || index >= SUBNET_POOL.count) throw new RangeError(`subnet index ${index}`);
  const third = index >> 2;
  const fourth = (index & 3) * 64;
  const [a, b] = SUBNET_POOL.base;
  return { index, network: `${a}.${b}.${third}.${fourth}`, gateway: `${a}.${b}.${third}.${fourth + 1}`, prefix: 26 };
}

/** The pool index of a bridge's `ipv4.address` (e.g. "10.202.3.65/26"), or null when it is not from the pool. */
export function subnetIndexOf(cidr: string | undefined): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/26$/.exec(cidr ?? '');
  if (!m || Number(m[1]) !== SUBNET_POOL.base[0] || Number(m[2]) !== SUBNET_POOL.base[1]) return null;
  return Number(m[3]) * 4 + Math.floor(Number(m[4]) / 64);
}

/** A node's fixed address: nodeN is .10+N of its session's subnet. */
export function nodeIp(subnet: Subnet, node: string): string {
  const n = /^node(\d+)$/.exec(node);
  if (!n || Number(n[1]) < 1 || Number(n[1]) > 50) throw new RangeError(`node name ${node}`);
  const [a, b, c, d] = subnet.network.split('.').map(Number);
  return `${a}.${b}.${c}.${d + 10 + Number(n[1])}`;
}

/** A request path aimed at one cluster member (Incus's `target`), or left to Incus where no member is named. */
export const onMember = (path: string, member?: string | null) =>
  member ? `${path}${path.includes('?') ? '&' : '?'}target=${encodeURIComponent(member)}` : path;

/**
 * In a cluster a managed network exists on every member: it is first defined on each (pending, with only
 * member-specific keys, here none), then created once with its config, which instantiates it everywhere.
 */
export const pendingNetworkBody = (sandboxId: string) => ({ name: bridgeName(sandboxId), type: 'bridge', config: {} });

/** spare: a bridge made ahead for a session yet to come (`sandboxId` then only names it; no session key is set). */
export type NetworkSpec = { sandboxId: string; instance: string; subnet: Subnet; berthDns: boolean; spare?: boolean };

export function networkBody({ sandboxId, instance, subnet, berthDns, spare = false }: NetworkSpec) {
  return {
    name: bridgeName(sandboxId),
    type: 'bridge',
    description: spare ? 'Berth spare session bridge' : `Berth session ${sandboxId}`,
    config: {
      'ipv4.address': `${subnet.gateway}/${subnet.prefix}`,
      'ipv4.nat': 'true',
      // Incus's own filter rules go above Docker's and Berth's in FORWARD and accept everything in and out
      // of the bridge (another session's bridge included): Berth's chains (engine/firewall.ts) decide instead.
      'ipv4.firewall': 'false',
      'ipv6.address': 'none',
      // Nodes get fixed addresses (nodeIp) written into them before they start: no DHCP, so no dnsmasq either
      // when Berth's own responder (engine/dns.ts) answers on the gateway, which needs UDP 53 there to itself.
      'ipv4.dhcp': 'false',
      'dns.mode': berthDns ? 'none' : 'managed',
      [KEY.managed]: '1',
      [KEY.role]: spare ? 'spare-net' : 'sandbox-net',
      [KEY.instance]: instance,
      ...(spare ? {} : { [KEY.sandbox]: sandboxId }),
    },
  };
}

export type NodeSpec = {
  sandboxId: string;
  instance: string;
  node: string;
  image: string;
  profile: string;
  pool: string | null;
  network: string;
  limits: Limits;
  mirrorPort: number | null;
};

const mib = (bytes: number) => `${Math.max(1, Math.floor(bytes / 1024 / 1024))}MiB`;

export function instanceBody(s: NodeSpec) {
  const cpus = s.limits.nanoCpus / 1e9;
  return {
    name: instanceName(s.sandboxId, s.node),
    type: 'container',
    source: { type: 'image', alias: s.image },
    profiles: [s.profile],
    config: {
      // The learner is root in the node, so the node is a user namespace of its own: a 65536-id range no
      // other learner shares (its own kernel key quota, its own uid on the host).
      'security.idmap.isolated': 'true',
      // Docker inside needs to create namespaces, mount proc/sysfs for its containers, and make device
      // nodes and overlay xattrs, which Incus performs on the node's behalf after checking them.
      'security.nesting': 'true',
      'security.syscalls.intercept.mknod': 'true',
      'security.syscalls.intercept.setxattr': 'true',
      'limits.memory': mib(s.limits.memoryBytes),
      'limits.memory.swap': 'false',
      // CPU as a CFS quota only. limits.cpu (a CPU count) makes Incus pin nodes to cores and rebalance the
      // pinning whenever a node starts or stops, and execs into other nodes then failed with "Failed to retrieve
      // PID of executing child process" 6 times in 200 while sessions came and went (0–3 in 500 without it).
      // The price: nproc and Docker's NCPU show the host's cores, not the quota.
      'limits.cpu.allowance': `${Math.round(cpus * 100)}ms/100ms`,
      'limits.processes': String(s.limits.pids),
      'boot.autostart': 'false',
      [KEY.managed]: '1',
      [KEY.role]: 'node',
      [KEY.instance]: s.instance,
      [KEY.sandbox]: s.sandboxId,
      [KEY.node]: s.node,
    },
    devices: {
      ...(s.pool ? { root: { type: 'disk', path: '/', pool: s.pool, ...(s.limits.diskBytes > 0 ? { size: mib(s.limits.diskBytes) } : {}) } } : {}),
      // The node's address reaches it in /etc/berth/node.env, not through Incus. No ipv4/mac filtering:
      // the bridge holds one session's nodes only, so a learner who changes addresses (root in the node) only
      // confuses their own session, and routed traffic is held by the host firewall whatever its source. Incus
      // 6.0's filtering costs ~17 ebtables rules per node that every bridged frame walks, and they were left
      // behind when nodes were deleted (measured: 444 → 453 rules after one create + remove).
      eth0: { type: 'nic', name: 'eth0', network: s.network },
      // The host's registry mirror (loopback only on the host) appears on the node's own loopback; the node
      // reaches nothing else of the host this way.
      ...(s.mirrorPort
        ? { mirror: { type: 'proxy', listen: `tcp:127.0.0.1:${NODE_MIRROR_PORT}`, connect: `tcp:127.0.0.1:${s.mirrorPort}`, bind: 'instance' } }
        : {}),
    },
  };
}

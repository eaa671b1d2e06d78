// Host firewall for sandbox bridges (interfaces named bs-*, made by Docker or by Incus, one per session):
// sandboxes never reach the host itself, nor another session, and their traffic to the outside follows
// one policy. The rules sit in front of Docker's chains (DOCKER-USER; FORWARD itself when no local Docker
// engine made that chain) and in INPUT. Docker's isolation chains only know Docker's own networks, so the
// rule keeping sessions apart is Berth's, and it holds for Incus bridges too.
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const BRIDGE_PREFIX = 'bs-';
export type EgressPolicy = 'allowlist' | 'open' | 'closed';

/** Host names of the package mirrors this host's apt uses: the default allow-list. */
export function aptHosts(dir = '/etc/apt'): string[] {
  const files = [join(dir, 'sources.list'), ...(existsSync(join(dir, 'sources.list.d')) ? readdirSync(join(dir, 'sources.list.d')).filter((f) => /\.(list|sources)$/.test(f)).map((f) => join(dir, 'sources.list.d', f)) : [])];
  const hosts = new Set<string>();
  for (const f of files.filter(existsSync)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^(?:deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(https?:\/\/[^\s]+)/gm)) {
      hosts.add(new URL(m[1]).hostname);
    }
  }
  return [...hosts];
}

const allowRule = (ip: string) => ['-d', ip, '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-j', 'RETURN'];

export function rules(policy: EgressPolicy, allowed: string[]): { chain: string; rules: string[][] }[] {
  const egress: string[][] = [
    ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'],
    // Nodes of one session talk to each other (and, with Docker, to the mirror) on their own bridge:
    // switched, not routed, traffic.
    ['-m', 'physdev', '--physdev-is-bridged', '-j', 'RETURN'],
    // Routed from one sandbox bridge into another: another session's nodes.
    ['-o', `${BRIDGE_PREFIX}+`, '-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'],
  ];
  if (policy === 'open') egress.push(['-j', 'RETURN']);
  else {
    if (policy === 'allowlist') for (const ip of allowed) egress.push(allowRule(ip));
    egress.push(['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  }
  const input: string[][] = [['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']];
  // Berth's own DNS responder (engine/dns.ts) listens on each sandbox gateway; with an open policy sandboxes
  // use the host's resolvers directly instead.
  if (policy !== 'open') input.push(['-p', 'udp', '--dport', '53', '-j', 'ACCEPT']);
  input.push(['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  // Nothing outside a session opens connections to its nodes (the host reaches them through OUTPUT).
  const ingress: string[][] = [
    ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'],
    ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'],
  ];
  return [
    // The host itself (its API port, loopback-bound services via the gateway address, the engine) is off limits.
    { chain: 'BERTH-INPUT', rules: input },
    { chain: 'BERTH-EGRESS', rules: egress },
    { chain: 'BERTH-INGRESS', rules: ingress },
  ];
}

/** Where the chains are hooked in: [table chain, rule...]; `forward` is DOCKER-USER or FORWARD. */
export function jumps(forward: string): string[][] {
  return [
    ['INPUT', '-i', `${BRIDGE_PREFIX}+`, '-j', 'BERTH-INPUT'],
    [forward, '-i', `${BRIDGE_PREFIX}+`, '-j', 'BERTH-EGRESS'],
    [forward, '!', '-i', `${BRIDGE_PREFIX}+`, '-o', `${BRIDGE_PREFIX}+`, '-j', 'BERTH-INGRESS'],
  ];
}

/**
 * What passed Berth's chains must also pass Docker's FORWARD policy (DROP). Docker accepts its own networks;
 * these two rules, at the end of FORWARD, accept Incus bridges whatever firewall driver Incus picked (with
 * nftables, Incus' own accept rules live in another table and do not override Docker's drop).
 */
export const FORWARD_TAIL: string[][] = [
  ['FORWARD', '-i', `${BRIDGE_PREFIX}+`, '-j', 'ACCEPT'],
  ['FORWARD', '-o', `${BRIDGE_PREFIX}+`, '-j', 'ACCEPT'],
];

/** Sandboxes get no IPv6 path to the host or onwards (their bridges have no IPv6 address; this holds if one appears). */
export const IPV6_RULES: string[][] = [
  ['INPUT', '-i', `${BRIDGE_PREFIX}+`, '-j', 'DROP'],
  ['FORWARD', '-i', `${BRIDGE_PREFIX}+`, '-j', 'DROP'],
];

function ipt(args: string[], bin = 'iptables') {
  return spawnSync(bin, ['-w', '5', ...args], { encoding: 'utf8' });
}

export type FirewallResult = { enforced: boolean; reason?: string; allowed: string[] };

export async function applyFirewall(policy: EgressPolicy, allowHosts: string[]): Promise<FirewallResult> {
  if (process.getuid?.() !== 0) return { enforced: false, reason: 'not root', allowed: [] };
  if (ipt(['-L', 'INPUT', '-n']).status !== 0) return { enforced: false, reason: 'iptables does not work here', allowed: [] };
  // Docker re-inserts its DOCKER-USER jump at the top of FORWARD when it restarts; hooking there keeps
  // Berth's rules first. Without a local Docker engine (Incus only) FORWARD itself is the place.
  const forward = ipt(['-L', 'DOCKER-USER', '-n']).status === 0 ? 'DOCKER-USER' : 'FORWARD';
  const allowed = new Set<string>();
  for (const h of allowHosts) {
    try { for (const a of await lookup(h, { all: true, family: 4 })) allowed.add(a.address); } catch { /* unresolvable now: left out */ }
  }
  for (const { chain, rules: rs } of rules(policy, [...allowed])) {
    ipt(['-N', chain]);
    ipt(['-F', chain]);
    for (const r of rs) {
      const res = ipt(['-A', chain, ...r]);
      if (res.status !== 0) throw new Error(`iptables -A ${chain} ${r.join(' ')} failed: ${res.stderr.trim()}`);
    }
  }
  // Inserted in reverse so that they end up in the order jumps() lists them, ahead of anything else.
  for (const jump of jumps(forward).reverse()) {
    if (ipt(['-C', ...jump]).status !== 0) ipt(['-I', ...jump]);
  }
  for (const r of FORWARD_TAIL) if (ipt(['-C', ...r]).status !== 0) ipt(['-A', ...r]);
  for (const r of IPV6_RULES) if (ipt(['-C', ...r], 'ip6tables').status !== 0) ipt(['-I', ...r], 'ip6tables');
  return { enforced: true, allowed: [...allowed] };
}

/** Lets sandboxes reach `ip` on 80/443 from now on: an allowed name moved to a new address (a CDN, a new mirror). */
export function allowAddress(ip: string) {
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || ipt(['-C', 'BERTH-EGRESS', ...allowRule(ip)]).status === 0) return;
  // Inserted at the top: the chain ends in a reject, and the order of the accepting rules does not matter.
  ipt(['-I', 'BERTH-EGRESS', '1', ...allowRule(ip)]);
}

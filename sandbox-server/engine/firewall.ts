// Host firewall for sandbox bridges (interfaces named bs-*): sandboxes never reach the host itself,
// and their traffic to the outside follows one policy. Docker's own chains already keep two sandbox
// networks apart; these rules sit in front of them (DOCKER-USER) and in INPUT. Where there is no
// DOCKER-USER (no local Docker engine, or one started with iptables off: Incus nodes need no Docker on
// the host), they sit at the top of FORWARD instead.
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const BRIDGE_PREFIX = 'bs-';
export type EgressPolicy = 'allowlist' | 'open' | 'closed';

/** Host names of the package mirrors this host's apt uses: the default allow-list. */
export function aptHosts(dir = '/etc/apt'): string[] {
  const files = [
    join(dir, 'sources.list'),
    ...(existsSync(join(dir, 'sources.list.d'))
      ? readdirSync(join(dir, 'sources.list.d'))
          .filter((f) => /\.(list|sources)$/.test(f))
          .map((f) => join(dir, 'sources.list.d', f))
      : []),
  ];
  const hosts = new Set<string>();
  for (const f of files.filter(existsSync)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^(?:deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(https?:\/\/[^\s]+)/gm)) {
      hosts.add(new URL(m[1]).hostname);
    }
  }
  return [...hosts];
}

// Verdicts are ACCEPT, not RETURN: Incus bridges (engine/incus) have no chain of Docker's after this one to
// accept them, only the FORWARD policy Docker set to DROP. For Docker's bridges the result is the same.
const allowRule = (ip: string) => ['-d', ip, '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-j', 'ACCEPT'];

export function rules(policy: EgressPolicy, allowed: string[]): { chain: string; rules: string[][] }[] {
  const egress: string[][] = [
    ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
    // Routed into another session's bridge: never (Docker's isolation chains do not know Incus's bridges).
    // Traffic within one bridge was accepted before this chain (bridgeRules).
    ['-o', `${BRIDGE_PREFIX}+`, '-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'],
  ];
  if (policy === 'open') egress.push(['-j', 'ACCEPT']);
  else {
    if (policy === 'allowlist') for (const ip of allowed) egress.push(allowRule(ip));
    egress.push(['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  }
  const input: string[][] = [['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']];
  // Berth's own DNS responder (engine/dns.ts) listens on each sandbox gateway; with an open policy sandboxes
  // use the host's resolvers directly instead.
  if (policy !== 'open') input.push(['-p', 'udp', '--dport', '53', '-j', 'ACCEPT']);
  input.push(['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  return [
    // The host itself (its API port, loopback-bound services via the gateway address, the engine) is off limits.
    { chain: 'BERTH-INPUT', rules: input },
    { chain: 'BERTH-EGRESS', rules: egress },
  ];
}

/** The iptables command, as argv: e.g. ['ip', 'netns', 'exec', 'ns1', 'iptables'] for another network namespace. */
export type FirewallOptions = { iptables?: string[] };

function iptablesOf({ iptables = ['iptables'] }: FirewallOptions) {
  return (args: string[]) => spawnSync(iptables[0], [...iptables.slice(1), '-w', '5', ...args], { encoding: 'utf8' });
}

/**
 * Rules at the top of DOCKER-USER, ahead of the jump to BERTH-EGRESS. Nodes of one session talk to each other
 * and to the mirror on their own bridge: bridged, never routed. Replies coming back into a sandbox bridge:
 * Docker accepts those for its own bridges only. They live outside the flushed chains so that a server of an
 * older version re-applying its chains does not cut an Incus session's nodes apart.
 */
export const bridgeRules: string[][] = [
  ['-i', `${BRIDGE_PREFIX}+`, '-m', 'physdev', '--physdev-is-bridged', '-j', 'ACCEPT'],
  ['-o', `${BRIDGE_PREFIX}+`, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
];

/** `forward`: the chain the egress rules hang from, DOCKER-USER where Docker made it, else FORWARD. */
export type FirewallResult = { enforced: boolean; reason?: string; allowed: string[]; forward?: 'DOCKER-USER' | 'FORWARD' };

export async function applyFirewall(policy: EgressPolicy, allowHosts: string[], opts: FirewallOptions = {}): Promise<FirewallResult> {
  if (process.getuid?.() !== 0) return { enforced: false, reason: 'not root', allowed: [] };
  const ipt = iptablesOf(opts);
  const check = ipt(['-S', 'FORWARD']);
  if (check.status !== 0)
    return { enforced: false, reason: `iptables cannot list FORWARD: ${(check.stderr || check.error?.message || '').trim()}`, allowed: [] };
  // Docker puts a jump to DOCKER-USER at the top of FORWARD, above its own chains; without it the top of FORWARD is that place.
  const forward = ipt(['-S', 'DOCKER-USER']).status === 0 ? 'DOCKER-USER' : 'FORWARD';
  const allowed = new Set<string>();
  for (const h of allowHosts) {
    try {
      for (const a of await lookup(h, { all: true, family: 4 })) allowed.add(a.address);
    } catch {
      /* unresolvable now: left out */
    }
  }
  for (const { chain, rules: rs } of rules(policy, [...allowed])) {
    ipt(['-N', chain]);
    ipt(['-F', chain]);
    for (const r of rs) {
      const res = ipt(['-A', chain, ...r]);
      if (res.status !== 0) throw new Error(`iptables -A ${chain} ${r.join(' ')} failed: ${res.stderr.trim()}`);
    }
  }
  const insert = (chain: string, rule: string[]) => {
    if (ipt(['-C', chain, ...rule]).status === 0) return;
    const res = ipt(['-I', chain, '1', ...rule]);
    if (res.status !== 0) throw new Error(`iptables -I ${chain} 1 ${rule.join(' ')} failed: ${res.stderr.trim()}`);
  };
  insert('INPUT', ['-i', `${BRIDGE_PREFIX}+`, '-j', 'BERTH-INPUT']);
  insert(forward, ['-i', `${BRIDGE_PREFIX}+`, '-j', 'BERTH-EGRESS']);
  // Above the jump: inserted at the top in reverse, so they end in order ahead of it.
  for (const r of [...bridgeRules].reverse()) insert(forward, r);
  return { enforced: true, allowed: [...allowed], forward };
}

/** Lets sandboxes reach `ip` on 80/443 from now on: an allowed name moved to a new address (a CDN, a new mirror). */
export function allowAddress(ip: string, opts: FirewallOptions = {}) {
  const ipt = iptablesOf(opts);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || ipt(['-C', 'BERTH-EGRESS', ...allowRule(ip)]).status === 0) return;
  // Inserted at the top: the chain ends in a reject, and the order of the accepting rules does not matter.
  ipt(['-I', 'BERTH-EGRESS', '1', ...allowRule(ip)]);
}

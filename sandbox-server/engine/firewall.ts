// Host firewall for sandbox bridges (interfaces named bs-*): sandboxes never reach the host itself,
// and their traffic to the outside follows one policy. Docker's own chains already keep two sandbox
// networks apart; these rules sit in front of them (DOCKER-USER) and in INPUT.
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

function ipt(args: string[]) {
  return spawnSync('iptables', ['-w', '5', ...args], { encoding: 'utf8' });
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

export type FirewallResult = { enforced: boolean; reason?: string; allowed: string[] };

export async function applyFirewall(policy: EgressPolicy, allowHosts: string[]): Promise<FirewallResult> {
  if (process.getuid?.() !== 0) return { enforced: false, reason: 'not root', allowed: [] };
  if (ipt(['-L', 'DOCKER-USER', '-n']).status !== 0) return { enforced: false, reason: 'no DOCKER-USER chain (engine not local, or started without iptables)', allowed: [] };
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
  for (const [parent, chain] of [['INPUT', 'BERTH-INPUT'], ['DOCKER-USER', 'BERTH-EGRESS']]) {
    const jump = [parent, '-i', `${BRIDGE_PREFIX}+`, '-j', chain];
    if (ipt(['-C', ...jump]).status !== 0) ipt(['-I', ...jump]);
  }
  for (const r of [...bridgeRules].reverse()) if (ipt(['-C', 'DOCKER-USER', ...r]).status !== 0) ipt(['-I', 'DOCKER-USER', '1', ...r]);
  return { enforced: true, allowed: [...allowed] };
}

/** Lets sandboxes reach `ip` on 80/443 from now on: an allowed name moved to a new address (a CDN, a new mirror). */
export function allowAddress(ip: string) {
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || ipt(['-C', 'BERTH-EGRESS', ...allowRule(ip)]).status === 0) return;
  // Inserted at the top: the chain ends in a reject, and the order of the accepting rules does not matter.
  ipt(['-I', 'BERTH-EGRESS', '1', ...allowRule(ip)]);
}

// What Berth needs to know about the Incus it talks to beyond one node: whether it is remote or a cluster,
// its members, which of them may take learners, and keeping Incus's placement to exactly those.
//
// On a cluster (or a remote Incus, which must be one: `incus cluster enable` makes a server a cluster of one)
// three duties act on each member machine, not on the Berth host: the sandbox firewall, the DNS responder on
// each session bridge's gateway, and the relay to the registry mirror. The member agent (sandbox-server/member/,
// `npm run member`) does them there and reports in its member's config (AGENT_KEY). Only members whose agent
// reported lately, under this server's egress policy, and that are not being drained (DRAIN_KEY), are in the
// cluster group GROUP; sessions are created with target=@GROUP, so Incus's scheduler places them among those.
import type { IncusClient } from './client.ts';
import { isNotFound } from './errors.ts';

export type Member = { name: string; status: string };

/** Member config keys: the agent's heartbeat (JSON {at, policy, mirror, version}) and a drain (JSON {deadline, started}). */
export const AGENT_KEY = 'user.berth.agent';
export const DRAIN_KEY = 'user.berth.drain';
/** The cluster group Berth places sessions in. */
export const GROUP = 'berth';
/** The agent reports every 15 s; a member whose last report is older than this takes no new sessions. */
export const AGENT_STALE_MS = 60_000;

/** The members of the cluster incusd belongs to, or null when it is a single server. */
export async function clusterMembers(client: IncusClient): Promise<Member[] | null> {
  const c = await client.get<{ enabled?: boolean }>('/1.0/cluster');
  if (!c.enabled) return null;
  return (await memberInfo(client)).map(({ name, status }) => ({ name, status }));
}

export type MemberInfo = Member & { config: Record<string, string>; groups: string[] };

export async function memberInfo(client: IncusClient): Promise<MemberInfo[]> {
  const members =
    await client.get<{ server_name: string; status: string; config?: Record<string, string>; groups?: string[] }[]>('/1.0/cluster/members?recursion=1');
  return members.map((m) => ({ name: m.server_name, status: m.status, config: m.config ?? {}, groups: m.groups ?? [] }));
}

/** Why a member may not take new sessions now, or null when it may. */
export function unready(m: MemberInfo, policy: string, now: number): string | null {
  if (m.status !== 'Online') return `it is ${m.status}`;
  if (m.config[DRAIN_KEY]) return 'it is being drained';
  const raw = m.config[AGENT_KEY];
  if (!raw) return 'no Berth member agent runs there (npm run member)';
  let agent: { at?: unknown; policy?: unknown };
  try {
    agent = JSON.parse(raw);
  } catch {
    return `its ${AGENT_KEY} is not JSON`;
  }
  if (typeof agent.at !== 'number' || now - agent.at > AGENT_STALE_MS)
    return `its member agent last reported ${typeof agent.at === 'number' ? `${Math.round((now - agent.at) / 1000)} s ago` : 'never'}`;
  if (agent.policy !== policy) return `its member agent holds sandboxes to egress policy ${String(agent.policy)}, this server to ${policy}`;
  return null;
}

export type Placement = { ready: string[]; unready: { name: string; reason: string }[]; changed: boolean };

/**
 * Makes the cluster group GROUP hold exactly the members that may take new sessions now; what it found.
 * Berth is the group's only writer (the agents only report), so a member leaves it as soon as its agent
 * stops reporting, and comes back with the next report.
 */
export async function syncPlacement(client: IncusClient, policy: string, now = Date.now(), known?: MemberInfo[]): Promise<Placement> {
  const members = known ?? (await memberInfo(client));
  const ready: string[] = [];
  const not: Placement['unready'] = [];
  for (const m of members) {
    const why = unready(m, policy, now);
    if (why) not.push({ name: m.name, reason: why });
    else ready.push(m.name);
  }
  let group: { members?: string[]; description?: string } | null = null;
  try {
    group = await client.get<{ members?: string[]; description?: string }>(`/1.0/cluster/groups/${GROUP}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const description = 'Members where Berth places learner sessions (kept by the Berth server)';
  let changed = false;
  if (!group) {
    await client.run('POST', '/1.0/cluster/groups', { name: GROUP, description, members: ready });
    changed = true;
  } else if ([...(group.members ?? [])].sort().join(',') !== [...ready].sort().join(',')) {
    await client.run('PUT', `/1.0/cluster/groups/${GROUP}`, { description, members: ready });
    changed = true;
  }
  return { ready, unready: not, changed };
}

export type FleetCheck = {
  /** Whether nodes run on machines other than the Berth host's own incusd: a remote Incus or a cluster of several. */
  fleet: boolean;
  /** Why the server must not run learner nodes through this client, or null when it may. */
  refused: string | null;
};

/**
 * What the server must know of its Incus before it starts, asked once: whether it is a fleet, and whether it
 * may run learner nodes there. A remote Incus must be a cluster (the agents report in member config, which a
 * single server has not); a fleet needs at least one member ready to take sessions.
 */
export async function fleetCheck(client: IncusClient, policy: string): Promise<FleetCheck> {
  const where = client.remote ? 'BERTH_INCUS_URL' : `BERTH_INCUS_SOCKET: ${client.socketPath}`;
  // The members are read once, here, and given to the placement sync below.
  const members = (await client.get<{ enabled?: boolean }>('/1.0/cluster')).enabled ? await memberInfo(client) : null;
  if (client.remote && !members)
    return {
      fleet: true,
      refused: `${where} is a single Incus server: Berth runs learner nodes on a remote Incus only as a cluster (run \`incus cluster enable <name>\` there to make it a cluster of one), so that a member agent can report on each machine.`,
    };
  const fleet = client.remote || (members?.length ?? 0) > 1;
  if (!fleet) return { fleet, refused: null };
  const p = await syncPlacement(client, policy, Date.now(), members ?? []);
  if (p.ready.length) return { fleet, refused: null };
  return {
    fleet,
    refused: `${where}: no member of the Incus cluster can take learner nodes: ${p.unready.map((u) => `${u.name}: ${u.reason}`).join('; ')}. Run \`npm run member\` on each machine (see the README, "Adding a machine").`,
  };
}

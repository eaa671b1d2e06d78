// Planned maintenance on an Incus cluster: a member being drained carries the config key `user.berth.drain`
// (cluster.ts DRAIN_KEY; JSON {"deadline": epoch ms, "started": epoch ms}). Placement leaves such a member out of
// the cluster group sessions are placed in (cluster.ts syncPlacement: no new session goes there), the session manager ends this server's sessions on it as they fall idle and the rest at the deadline
// (sandboxes/manager.ts), and the mark lives in Incus's database, so it survives a restart of Berth and is seen
// by every Berth server on the cluster. Incus accepts any `user.*` key on a member (clusterValidateConfig in
// cmd/incusd/api_cluster.go: "User keys are free for all"). The key is written the way `incus cluster set` does:
// the member is read with its ETag and written back whole (PUT replaces the config) with If-Match, so a change
// made meanwhile by someone else (the server keeping the placement group's members, an agent's report) is
// refused with 412 and the write is made again on what is there now.
import { ApiError } from '../../errors.ts';
import type { Drain, Machine } from '../provider.ts';
import { IncusError, parseEnvelope } from './api.ts';
import type { IncusClient } from './client.ts';
import { DRAIN_KEY, memberInfo } from './cluster.ts';

/** A member as GET /1.0/cluster/members/<name> describes it (the writable part is what PUT takes back). */
type MemberDoc = {
  server_name: string;
  status: string;
  description?: string;
  roles?: string[];
  failure_domain?: string;
  groups?: string[];
  config?: Record<string, string>;
};

/** The drain a member's config carries, or null (no key, or one that is not a drain: then it is not draining). */
export function parseDrain(value: string | undefined): Drain | null {
  if (!value) return null;
  try {
    const v = JSON.parse(value) as { deadline?: unknown; started?: unknown };
    return typeof v.deadline === 'number' && Number.isFinite(v.deadline) && typeof v.started === 'number' && Number.isFinite(v.started)
      ? { deadline: v.deadline, started: v.started }
      : null;
  } catch {
    return null;
  }
}

export const drainValue = (d: Drain) => JSON.stringify({ deadline: d.deadline, started: d.started });

/** The cluster's members with their drains, or null for a single server (there is nothing to drain). */
export async function memberList(client: IncusClient): Promise<Machine[] | null> {
  const c = await client.get<{ enabled?: boolean }>('/1.0/cluster');
  if (!c.enabled) return null;
  return (await memberInfo(client)).map((m) => ({ name: m.name, status: m.status, drain: parseDrain(m.config[DRAIN_KEY]) }));
}

const memberPath = (name: string) => `/1.0/cluster/members/${encodeURIComponent(name)}`;

/** How many times a write refused for a change made meanwhile (412) is made again on the member as it is then. */
const ATTEMPTS = 3;

/** Sets (or, with null, removes) a member's drain key, keeping every other key, its roles, groups and description. */
export async function setMemberDrain(client: IncusClient, name: string, drain: Drain | null): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeDrain(client, name, drain);
    } catch (err) {
      if (!(err instanceof IncusError && err.status === 412) || attempt >= ATTEMPTS) throw err;
    }
  }
}

async function writeDrain(client: IncusClient, name: string, drain: Drain | null): Promise<void> {
  const res = await client.http('GET', memberPath(name));
  let e: ReturnType<typeof parseEnvelope>;
  try {
    e = parseEnvelope(res.status, res.body.toString('utf8'));
  } catch (err) {
    if (err instanceof IncusError && err.status === 404) throw machineNotFound(name);
    throw err;
  }
  if (e.type !== 'sync') throw new IncusError(502, `GET ${memberPath(name)} started an operation`);
  const m = e.metadata as MemberDoc;
  const config = { ...(m.config ?? {}) };
  if (drain) config[DRAIN_KEY] = drainValue(drain);
  else if (!(DRAIN_KEY in config)) return;
  else delete config[DRAIN_KEY];
  const etag = res.headers.etag;
  const put = await client.call('PUT', memberPath(name), {
    body: { description: m.description ?? '', roles: m.roles ?? [], failure_domain: m.failure_domain ?? 'default', groups: m.groups ?? ['default'], config },
    headers: typeof etag === 'string' ? { 'If-Match': etag } : {},
  });
  if (put.type !== 'sync') throw new IncusError(502, `PUT ${memberPath(name)} started an operation`);
}

export const machineNotFound = (name: string) => new ApiError(404, 'MACHINE_NOT_FOUND', `No machine called ${JSON.stringify(name)} in this cluster.`);

/** The member holding an instance (its `location`), or null when the instance is not there or Incus names none. */
export async function locationOf(client: IncusClient, instance: string): Promise<string | null> {
  try {
    const i = await client.get<{ location?: string }>(`/1.0/instances/${encodeURIComponent(instance)}`);
    return i.location && i.location !== 'none' ? i.location : null;
  } catch (err) {
    if (err instanceof IncusError && err.status === 404) return null;
    throw err;
  }
}

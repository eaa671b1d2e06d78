// Planned maintenance on an Incus cluster: a member being drained carries the config key `user.berth.drain`
// (cluster.ts DRAIN_KEY; JSON {"deadline": epoch ms, "started": epoch ms}). Placement leaves such a member out of
// the cluster group sessions are placed in (cluster.ts syncPlacement: no new session goes there), the session
// manager ends this server's sessions on it as they fall idle and the rest at the deadline (sandboxes/manager.ts),
// and the mark lives in Incus's database, so it survives a restart of Berth and is seen by every Berth server on
// the cluster. Incus accepts any `user.*` key on a member (clusterValidateConfig in cmd/incusd/api_cluster.go:
// "User keys are free for all"); it is written as the member agent writes its heartbeat (setMemberKey).
import { ApiError } from '../../errors.ts';
import type { Drain, Machine } from '../provider.ts';
import { setMemberKey } from '../../member/heartbeat.ts';
import { IncusError } from './api.ts';
import type { IncusClient } from './client.ts';
import { DRAIN_KEY, memberInfo } from './cluster.ts';

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

/**
 * Sets (or, with null, removes) a member's drain key, every other key, its roles, groups and description kept: the
 * member agent's own way of writing its heartbeat (member/heartbeat.ts setMemberKey: GET with its ETag, PUT back
 * whole with If-Match, again on a 412). An unknown member is 404 MACHINE_NOT_FOUND.
 */
export async function setMemberDrain(client: IncusClient, name: string, drain: Drain | null): Promise<void> {
  try {
    await setMemberKey(client, name, DRAIN_KEY, drain && drainValue(drain));
  } catch (err) {
    if (err instanceof IncusError && err.status === 404) throw machineNotFound(name);
    throw err;
  }
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

// The agent's word to the cluster that this member may take learners: every 15 s a small JSON value under
// `user.berth.agent` in the member's own config, written through the local incusd; removed when the agent stops.
// The Berth server reads it from the member list and trusts a member only while the value is fresh.
//
// How it is written, from Incus 6.0's source (cmd/incusd/api_cluster.go, updateClusterNode and
// clusterValidateConfig): `user.*` keys are accepted on a member's config ("User keys are free for all"). A PUT
// replaces the whole config (its keys are deleted and written again) and also sets description, roles, failure
// domain and groups from the body; a PATCH merges only `config` and still takes those four from the body (a
// member must keep one group and its database role), and it cannot remove a key (missing ones are filled back).
// So, as `incus cluster set` does: GET the member (its ETag header hashes the writable part), change the one
// key, and PUT the whole writable part back with If-Match; a 412 means someone changed the member in between,
// and the change is made again on what they wrote.
import { IncusError, parseEnvelope } from '../engine/incus/api.ts';
import type { IncusClient } from '../engine/incus/client.ts';
import type { EgressPolicy } from '../engine/firewall.ts';

export const AGENT_KEY = 'user.berth.agent';
export const HEARTBEAT_MS = 15_000;
export const AGENT_VERSION = 1;

export type AgentBeat = { at: number; policy: EgressPolicy; mirror: boolean; version: typeof AGENT_VERSION };

/** The writable part of a cluster member (api.ClusterMemberPut). */
type MemberPut = { config?: Record<string, string>; description?: string; roles?: string[]; failure_domain?: string; groups?: string[] };

/** This incusd's member name, or null when it is not part of a cluster (there is no member config to write). */
export async function ownMember(client: IncusClient): Promise<string | null> {
  const info = await client.get<{ environment?: { server_name?: string; server_clustered?: boolean } }>('/1.0');
  const env = info.environment ?? {};
  if (!env.server_clustered) return null;
  if (!env.server_name) throw new IncusError(502, 'GET /1.0 names no server_name');
  return env.server_name;
}

/** Sets (`value`) or removes (null) one key of a member's config, every other key and field kept (see above). */
export async function setMemberKey(client: IncusClient, member: string, key: string, value: string | null, { attempts = 5, timeoutMs = 10_000 } = {}) {
  const path = `/1.0/cluster/members/${encodeURIComponent(member)}`;
  for (let attempt = 1; ; attempt++) {
    const got = await client.http('GET', path, { timeoutMs });
    const e = parseEnvelope(got.status, got.body.toString('utf8'));
    if (e.type !== 'sync') throw new IncusError(502, `GET ${path} started an operation`);
    const m = (e.metadata ?? {}) as MemberPut;
    const config = { ...(m.config ?? {}) };
    if (value === null) {
      if (!(key in config)) return;
      delete config[key];
    } else config[key] = value;
    const body = { config, description: m.description ?? '', roles: m.roles ?? [], failure_domain: m.failure_domain ?? '', groups: m.groups ?? [] };
    const etag = got.headers.etag;
    const put = await client.http('PUT', path, { body, headers: typeof etag === 'string' ? { 'if-match': etag } : {}, timeoutMs });
    try {
      parseEnvelope(put.status, put.body.toString('utf8'));
      return;
    } catch (err) {
      if (!(err instanceof IncusError && err.status === 412 && attempt < attempts)) throw err;
    }
  }
}

export type HeartbeatOptions = {
  client: IncusClient;
  policy: EgressPolicy;
  /** Whether nodes on this member reach a mirror now. */
  mirror: () => Promise<boolean>;
  intervalMs?: number;
  now?: () => number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
};

export class Heartbeat {
  /** This member's name; null: incusd is not clustered; undefined: not known yet (incusd did not answer). */
  member: string | null | undefined;
  /** The last value written, or null. */
  last: AgentBeat | null = null;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  private stopped = false;
  private failing = false;
  private opts: HeartbeatOptions;

  constructor(opts: HeartbeatOptions) {
    this.opts = opts;
  }

  /**
   * Writes the first beat (resolves once it is written or has failed, which is logged), then one every interval.
   * Resolves false when incusd is not a cluster member: there is no member config to write then.
   */
  async start(): Promise<boolean> {
    try {
      this.member = await ownMember(this.opts.client);
    } catch (err) {
      // incusd not answering yet: each beat asks again.
      this.opts.log.error({ err, socket: this.opts.client.socketPath }, 'heartbeat: incusd does not answer on BERTH_INCUS_SOCKET; asking again each beat');
      this.failing = true;
    }
    if (this.member === null) return false;
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.opts.intervalMs ?? HEARTBEAT_MS);
    return true;
  }

  beat(): Promise<void> {
    this.busy = this.busy.then(() => this.write());
    return this.busy;
  }

  private async write() {
    if (this.stopped) return;
    try {
      if (this.member === undefined) this.member = await ownMember(this.opts.client);
      if (this.member === null) return;
      const beat: AgentBeat = { at: (this.opts.now ?? Date.now)(), policy: this.opts.policy, mirror: await this.opts.mirror(), version: AGENT_VERSION };
      if (this.stopped) return;
      await setMemberKey(this.opts.client, this.member, AGENT_KEY, JSON.stringify(beat));
      this.last = beat;
      if (this.failing) this.opts.log.info({ member: this.member }, 'heartbeat written again');
      this.failing = false;
    } catch (err) {
      // Logged once per run of failures, not every 15 s.
      if (!this.failing) this.opts.log.error({ err, member: this.member }, 'heartbeat could not be written: the cluster will stop giving this member learners');
      this.failing = true;
    }
  }

  /** No more beats; the key is removed, so the server stops trusting this member at once. */
  async stop() {
    this.stopped = true;
    clearInterval(this.timer);
    await this.busy;
    if (!this.member) return;
    try {
      await setMemberKey(this.opts.client, this.member, AGENT_KEY, null, { timeoutMs: 5000 });
    } catch (err) {
      this.opts.log.warn({ err, member: this.member }, `heartbeat: could not remove ${AGENT_KEY}; it goes stale instead`);
    }
  }
}

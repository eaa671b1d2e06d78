// Sessions: who owns which sandbox, for how long. The provider does the engine work; the store remembers.
import { hashToken, newId, newToken, tokenMatches } from '../auth.ts';
import { ApiError, type MachineGone, machineGone, notFound } from '../errors.ts';
import type { ExecResult, RunOptions } from '../engine/exec.ts';
import type { Limits } from '../engine/node-spec.ts';
import type { Drain, Machine, SandboxProvider } from '../engine/provider.ts';
import { parsePublished } from '../engine/published.ts';
import type { SessionRow, Store } from '../store.ts';
import { RateLimiter } from '../rate-limit.ts';
import { WarmPool } from './pool.ts';
import { packFiles } from './tar.ts';

export type SeedFile = { path: string; content: Buffer };

export type ManagerOptions = {
  provider: SandboxProvider;
  store: Store;
  limits: Limits;
  poolSize: number;
  maxSandboxes: number;
  maxNodes: number;
  lifetimeMs: number;
  extendMs: number;
  /** Absolute cap on a session's life, extends included (default: no cap beyond one lifetime from now). */
  maxLifetimeMs?: number;
  /** Nodes added or removed per session per minute. */
  nodeOpsPerMin?: number;
  idleMs: number;
  execMaxOutput: number;
  /** Files a lesson seeds into the workspace; throws LESSON_NOT_FOUND for an unknown lesson. */
  seedFiles: (lesson: string) => SeedFile[];
  /** While its machine drains, a session not used for this long (no terminal open, no API call) is ended at once. */
  drainIdleMs?: number;
  now?: () => number;
};

/** How long a session on a draining machine may go unused before it is ended (the default of drainIdleMs). */
export const DRAIN_IDLE_MS = 2 * 60_000;

/** A machine as the operator's list shows it: this server's sessions on it, and whether a drain is done with it. */
export type MachineView = { name: string; status: string; sessions: number; drain: (Drain & { drained: boolean }) | null };

/** lost: a session's machine is gone for it (detail.reason: the member); drains: the machines being drained changed;
 *  draining: a session's machine began or stopped draining (detail.id); drained: none of this server's sessions is
 *  left on a draining machine (reason: it). */
export type ManagerEvent = 'created' | 'removed' | 'node-removed' | 'pool-created' | 'lost' | 'drains' | 'draining' | 'drained' | 'error';
export type EventDetail = { ms?: number; warm?: boolean; reason?: string; err?: unknown; id?: string };
export type ManagerListener = (event: ManagerEvent, detail: EventDetail) => void;

/** How many times a node's lesson files are unpacked before the sandbox is given up. */
export const SEED_ATTEMPTS = 3;

export const nodeNames = (n: number) => Array.from({ length: n }, (_, i) => `node${i + 1}`);

export class SandboxManager {
  private readonly opts: ManagerOptions;
  private readonly pool: WarmPool;
  private readonly listeners: ManagerListener[] = [];
  private creating = 0;
  private readonly adding = new Map<string, number>();
  private readonly addingNames = new Map<string, string[]>();
  readonly now: () => number;
  private readonly nodeOps: RateLimiter;
  /**
   * Sessions whose machine is gone for them: it went away (provider.lostSandboxes), or it was drained for
   * maintenance and the session ended (`deadline`: the drain's). The member, and when it was noticed. Their routes
   * answer 503 with the reason's code until they expire or are deleted; they hold no room.
   */
  private readonly lost = new Map<string, { member: string; at: number; why: MachineGone; deadline?: number }>();
  /** Machines being drained, as the provider last said (drainTick) or as this server just set them. */
  private drains = new Map<string, Drain>();
  /** Draining machines with none of this server's sessions left, already announced. */
  private readonly drained = new Set<string>();
  /** The machine holding each session, asked once per session (sessions do not move). */
  private readonly where = new Map<string, string>();
  /** Learner terminals open per session: a session with one is in use. */
  private readonly terminals = new Map<string, number>();
  /** Activity before this process started is unknown: nothing counts as unused until drainIdleMs after it. */
  private readonly bornAt: number;
  /** Sandboxes of ended sessions that could not be removed yet (e.g. their machine is away); reap() tries again. */
  private readonly leftovers = new Set<string>();

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.bornAt = this.now();
    this.nodeOps = new RateLimiter(opts.nodeOpsPerMin ?? 12, 60_000, this.now);
    this.pool = new WarmPool({
      provider: opts.provider,
      limits: opts.limits,
      target: opts.poolSize,
      hasRoom: () => this.count() < opts.maxSandboxes,
      onError: (err) => this.emit('error', { err, reason: 'pool' }),
      onCreated: (ms) => this.emit('pool-created', { ms }),
    });
  }

  /** Objects that hold per-session state (terminal replay, preview addresses, replays, metrics) hear of removals here. */
  listen(listener: ManagerListener) {
    this.listeners.push(listener);
  }

  private emit(event: ManagerEvent, detail: EventDetail) {
    for (const l of this.listeners) l(event, detail);
  }

  /** The session row, if it exists (expired or not: see expired()). */
  get(id: string): SessionRow | undefined {
    return this.opts.store.getSession(id);
  }

  isShared(id: string, node: string, port: number) {
    return this.opts.store.isShared(id, node, port);
  }
  setShared(id: string, node: string, port: number, shared: boolean) {
    this.opts.store.setShared(id, node, port, shared);
  }

  /** Sandboxes by state, for the metrics. */
  counts() {
    return {
      sessions: this.opts.store.allSessions().length,
      poolReady: this.pool.ready.length,
      starting: this.pool.starting + this.creating,
      lost: [...this.lost.values()].filter((l) => l.why === 'lost').length,
      maintenance: [...this.lost.values()].filter((l) => l.why === 'maintenance').length,
    };
  }

  /** The warm pool as workshops see it: its target, and its ready and starting engines. */
  poolStatus() {
    return { target: this.pool.target, ready: this.pool.ready.length, starting: this.pool.starting };
  }
  /** Up to `n` ready pool sandboxes (for measuring an idle engine; one may be taken meanwhile). */
  readyPoolIds(n: number) {
    return this.pool.ready.slice(0, n);
  }
  setPoolTarget(n: number) {
    if (n !== this.pool.target) this.pool.setTarget(n);
  }
  /** Removes ready pool sandboxes above the target. */
  trimPool() {
    this.pool.trim();
  }

  /** Sandboxes that take room: a lost session's machine is away, so it holds none. */
  count() {
    return this.opts.store.allSessions().length - this.lost.size + this.pool.size + this.creating;
  }

  /** Finds what a previous process left: sessions still valid are adopted, everything else is removed. */
  async recover() {
    const found = await this.opts.provider.list();
    const t = this.now();
    const sessions = new Map(this.opts.store.allSessions().map((s) => [s.id, s]));
    for (const f of found) {
      const s = sessions.get(f.sandboxId);
      if (f.lost) {
        // Its machine does not answer: nothing can be removed there now. A valid session stays; findLost() marks
        // it lost if Incus declares the machine offline, and it simply works again if the machine answers.
        if (!s || this.expired(s)) {
          if (s) this.opts.store.deleteSession(s.id);
          this.leftovers.add(f.sandboxId);
        }
        sessions.delete(f.sandboxId);
        continue;
      }
      const alive = s && f.running && s.expiresAt > t && s.lastActivityAt + this.opts.idleMs > t && s.nodes.every((n) => f.nodes.includes(n));
      if (!alive) await this.opts.provider.removeSandbox(f.sandboxId);
      if (s && !alive) this.opts.store.deleteSession(s.id);
      sessions.delete(f.sandboxId);
    }
    // Sessions whose containers vanished are over.
    for (const s of sessions.values()) this.opts.store.deleteSession(s.id);
    await this.opts.provider.sweep?.();
    return { adopted: found.filter((f) => this.opts.store.getSession(f.sandboxId)).length, removed: found.length - this.opts.store.allSessions().length };
  }

  /** The member a lost session's machine was (gone away or drained for maintenance), or undefined while it is not lost. */
  lostMember(id: string): string | undefined {
    return this.lost.get(id)?.member;
  }

  /** Lost sessions: id, member, when it was noticed (ms) and why (gone away, or ended for maintenance). */
  lostSessions() {
    return [...this.lost].map(([id, l]) => ({ id, ...l }));
  }

  private markLost(id: string, member: string, why: MachineGone = 'lost', deadline?: number) {
    if (this.lost.has(id)) return;
    this.lost.set(id, { member, at: this.now(), why, ...(deadline === undefined ? {} : { deadline }) });
    this.emit('lost', { id, reason: member });
  }

  /** The 503 a lost session answers: MACHINE_LOST, or MACHINE_MAINTENANCE for one ended by a drain. */
  private goneError(id: string) {
    return machineGone(this.lost.get(id)?.why ?? 'lost');
  }

  /**
   * Asks the provider which sandboxes' machines went away and marks this server's sessions among them lost:
   * their routes answer 503 MACHINE_LOST from then on, until they expire or are deleted. Returns how many are newly lost.
   */
  async findLost(): Promise<number> {
    if (!this.opts.provider.lostSandboxes) return 0;
    const before = this.lost.size;
    for (const [id, l] of await this.opts.provider.lostSandboxes()) if (this.opts.store.getSession(id)) this.markLost(id, l.member);
    return this.lost.size - before;
  }

  /**
   * Runs a provider call for a session. A failure may be its machine going away: then the session is marked lost
   * and the caller gets MACHINE_LOST instead of the engine's error.
   */
  private async guard<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.lost.has(id)) throw this.goneError(id);
    try {
      return await fn();
    } catch (err) {
      if (this.opts.provider.lostSandboxes && !(err instanceof ApiError && err.status < 500)) {
        // Every session found lost is marked, not only this one: the others' learners are told as soon.
        await this.findLost().catch(() => 0);
        if (this.lost.has(id)) throw this.goneError(id);
        // Not (yet) declared lost, but not answering: say so rather than pass on the engine's failure.
        if (await this.opts.provider.machineAway?.(id).catch(() => null)) {
          throw new ApiError(
            503,
            'ENGINE_UNAVAILABLE',
            'The machine running this sandbox is not answering. If it does not come back within a minute, this sandbox is lost and you can start a new one.',
            err,
          );
        }
      }
      throw err;
    }
  }

  startPool() {
    this.pool.fill();
  }

  async create({ lesson, nodes = 1, client = '' }: { lesson?: string; nodes?: number; client?: string }) {
    if (nodes > this.opts.maxNodes) throw new ApiError(400, 'VALIDATION_FAILED', `A session holds at most ${this.opts.maxNodes} nodes.`);
    const seed = lesson ? this.opts.seedFiles(lesson) : [];
    const t0 = performance.now();
    let id = nodes === 1 ? this.pool.take() : undefined;
    // A warm sandbox on a machine being drained is not handed out (drainTick removes them, but a drain may have
    // begun since): it goes, and this session starts elsewhere.
    if (id && (await this.onDrainingMachine(id))) {
      this.pool.discard(id);
      id = undefined;
    }
    const warm = !!id;
    if (!id) {
      if (this.count() >= this.opts.maxSandboxes) {
        throw new ApiError(503, 'OUT_OF_CAPACITY', 'This Berth server has no room for another sandbox right now. Try again in a few minutes.');
      }
      id = newId();
      this.creating++;
      try {
        await this.opts.provider.createSandbox(id, nodeNames(nodes), this.opts.limits, { forLearner: true });
      } finally {
        this.creating--;
      }
    }
    const token = newToken();
    const t = this.now();
    const row: SessionRow = {
      id,
      tokenHash: hashToken(token),
      lesson: lesson ?? null,
      nodes: nodeNames(nodes),
      createdAt: t,
      expiresAt: t + this.opts.lifetimeMs,
      lastActivityAt: t,
      client,
    };
    try {
      if (seed.length) await this.seed(id, row.nodes, seed);
      this.opts.store.insertSession(row);
    } catch (err) {
      await this.opts.provider.removeSandbox(id);
      throw err;
    }
    this.emit('created', { ms: performance.now() - t0, warm });
    return { id, token, expiresAt: new Date(row.expiresAt).toISOString(), nodes: row.nodes.map((name) => ({ name })) };
  }

  /** Writes the lesson's files into the learner's workspace on every node, as the learner. */
  async seed(id: string, nodes: string[], files: SeedFile[]) {
    const tar = packFiles(files);
    for (const node of nodes) await this.seedNode(id, node, tar);
  }

  /**
   * Unpacks the lesson's files on one node. Unpacking the same files again is harmless, so a failed attempt (an
   * exec lost while a fresh node is still settling under load) is tried again before the sandbox is given up;
   * each failure is logged with tar's own words.
   */
  async seedNode(id: string, node: string, tar: Buffer, attempts = SEED_ATTEMPTS) {
    for (let attempt = 1; ; attempt++) {
      let why: string;
      try {
        const r = await this.opts.provider.run(id, node, 'tar -x -C /home/learner', { timeoutMs: 20_000, maxOutput: 4096, stdin: tar });
        if (r.exitCode === 0) return;
        why = `tar exited with ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 500) || '(no output)'}`;
      } catch (err) {
        why = (err as Error).message;
      }
      this.emit('error', { err: new Error(why), reason: `seeding ${node} of ${id}, attempt ${attempt} of ${attempts}`, id });
      if (attempt >= attempts) throw new ApiError(500, 'SANDBOX_FAILED', 'The lesson files could not be written into the sandbox.');
    }
  }

  /**
   * Returns the session if the token is its own. No token at all is 401 whether or not the session exists;
   * an unknown id and a wrong token get the same 404, so a stranger cannot learn which sessions exist. A lost
   * session (its machine went away) is 503 MACHINE_LOST to its owner, one ended by a drain 503 MACHINE_MAINTENANCE,
   * except where `allowLost` (deleting it).
   */
  authorize(id: string, token: string | undefined, allowLost = false): SessionRow {
    if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'This route needs the session token (Authorization: Bearer <token>).');
    const s = this.opts.store.getSession(id);
    if (!s || !tokenMatches(token, s.tokenHash) || this.expired(s)) {
      throw new ApiError(404, 'SESSION_NOT_FOUND', 'No such session, or its token is wrong. It may have ended.');
    }
    if (!allowLost && this.lost.has(id)) throw this.goneError(id);
    return s;
  }

  expired(s: SessionRow) {
    const t = this.now();
    return s.expiresAt <= t || s.lastActivityAt + this.opts.idleMs <= t;
  }

  view(s: SessionRow) {
    // While its machine is being drained: when it goes down (the page's banner).
    const m = this.maintenance(s.id);
    return {
      id: s.id,
      lesson: s.lesson,
      createdAt: new Date(s.createdAt).toISOString(),
      expiresAt: new Date(s.expiresAt).toISOString(),
      idleExpiresAt: new Date(Math.min(s.expiresAt, s.lastActivityAt + this.opts.idleMs)).toISOString(),
      nodes: s.nodes.map((name) => ({ name, state: 'ready' })),
      ...(m && !m.ended ? { maintenanceAt: new Date(m.deadline).toISOString() } : {}),
    };
  }

  private touched = new Map<string, number>();
  /** The last use of each session by its learner (API calls, terminal input, a terminal closing), for drains. */
  private readonly usedAt = new Map<string, number>();

  /** Records activity at most once a second per session: keystrokes must not each wait for a database write. */
  touch(id: string) {
    const t = this.now();
    this.usedAt.set(id, t);
    if ((this.touched.get(id) ?? -Infinity) + 1000 > t) return;
    this.touched.set(id, t);
    this.opts.store.updateSession(id, { lastActivityAt: t });
  }

  extend(s: SessionRow) {
    // Extending pushes the end out, never beyond one lifetime from now nor past the absolute cap.
    const cap = s.createdAt + (this.opts.maxLifetimeMs ?? Infinity);
    const expiresAt = Math.max(s.expiresAt, Math.min(s.expiresAt + this.opts.extendMs, this.now() + this.opts.lifetimeMs, cap));
    this.opts.store.updateSession(s.id, { expiresAt, lastActivityAt: this.now() });
    return { expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Ends a session: its row goes at once. A sandbox the engine cannot remove now (its machine lost, or an Incus
   * cluster that cannot delete a session's bridge while any member is away) is left for reap() to try again,
   * so that one failed removal never stops the others.
   */
  async remove(id: string, reason = 'deleted') {
    this.opts.store.deleteSession(id);
    this.touched.delete(id);
    this.usedAt.delete(id);
    this.lost.delete(id);
    this.where.delete(id);
    await this.removeOrLater(id, 'removing a sandbox');
    this.emit('removed', { reason, id });
  }

  node(s: SessionRow, node: string | undefined) {
    const name = node ?? 'node1';
    if (!s.nodes.includes(name)) throw notFound('node', name);
    return name;
  }

  async exec(s: SessionRow, cmd: string, node: string | undefined, timeoutMs: number): Promise<ExecResult> {
    return this.run(s, node, cmd, { timeoutMs, maxOutput: this.opts.execMaxOutput });
  }

  /** Runs a command in one of the session's nodes as the learner; counts as activity. */
  async run(s: SessionRow, node: string | undefined, cmd: string, opts: RunOptions): Promise<ExecResult> {
    this.touch(s.id);
    const name = this.node(s, node);
    return this.guard(s.id, () => this.opts.provider.run(s.id, name, cmd, opts));
  }

  /** Ports published by containers in the learner's engines, node by node. */
  async publishedPorts(s: SessionRow) {
    return this.guard(s.id, () => this.ports(s));
  }

  private async ports(s: SessionRow) {
    const all = await Promise.all(
      s.nodes.map(async (node) => {
        const r = await this.opts.provider.run(s.id, node, "docker ps --format '{{.ID}}\t{{.Image}}\t{{.Names}}\t{{.Ports}}'", {
          timeoutMs: 10_000,
          maxOutput: 256 * 1024,
        });
        return r.exitCode === 0 ? parsePublished(r.stdout).map((p) => ({ node, ...p })) : [];
      }),
    );
    return all.flat();
  }

  /** Adds the next free node (node2, node3, ...) to a running session. */
  /** Adding and removing nodes starts and stops engines: one client must not churn them without end. */
  countNodeOp(s: SessionRow) {
    if (!this.nodeOps.allow(s.id)) throw new ApiError(429, 'RATE_LIMITED', 'Too many nodes added or removed in this session. Wait a minute and try again.');
  }

  async addNode(s: SessionRow) {
    this.countNodeOp(s);
    const current = this.opts.store.getSession(s.id)?.nodes ?? s.nodes;
    if (current.length + (this.adding.get(s.id) ?? 0) >= this.opts.maxNodes) {
      throw new ApiError(409, 'CONFLICT', `A session holds at most ${this.opts.maxNodes} nodes.`);
    }
    if (this.count() >= this.opts.maxSandboxes) {
      throw new ApiError(503, 'OUT_OF_CAPACITY', 'This Berth server has no room for another node right now.');
    }
    // Names being added right now are taken too: two quick clicks must not race for the same name.
    const taken = new Set([...current, ...(this.addingNames.get(s.id) ?? [])]);
    const name = nodeNames(this.opts.maxNodes + taken.size).find((n) => !taken.has(n))!;
    this.adding.set(s.id, (this.adding.get(s.id) ?? 0) + 1);
    this.addingNames.set(s.id, [...(this.addingNames.get(s.id) ?? []), name]);
    this.creating++;
    try {
      await this.guard(s.id, () => this.opts.provider.addNode(s.id, name, this.opts.limits));
      const now = this.opts.store.getSession(s.id);
      if (!now) {
        await this.opts.provider.removeNode(s.id, name);
        throw notFound('session', s.id);
      }
      this.opts.store.updateSession(s.id, { nodes: [...now.nodes, name].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))), lastActivityAt: this.now() });
      if (now.lesson) {
        const seed = this.opts.seedFiles(now.lesson);
        if (seed.length) await this.seedNode(s.id, name, packFiles(seed));
      }
      return { name };
    } finally {
      this.creating--;
      this.adding.set(s.id, (this.adding.get(s.id) ?? 1) - 1);
      this.addingNames.set(
        s.id,
        (this.addingNames.get(s.id) ?? []).filter((n) => n !== name),
      );
    }
  }

  async removeNode(s: SessionRow, node: string) {
    this.countNodeOp(s); // attempts count, valid or not
    const name = this.node(s, node);
    if (s.nodes.length === 1) throw new ApiError(409, 'CONFLICT', 'A session keeps at least one node; delete the session instead.');
    if (this.lost.has(s.id)) throw this.goneError(s.id);
    this.opts.store.updateSession(s.id, { nodes: s.nodes.filter((n) => n !== name), lastActivityAt: this.now() });
    await this.opts.provider.removeNode(s.id, name);
    this.emit('node-removed', { id: s.id, reason: name });
  }

  /** Removes sessions past their lifetime or idle timeout. */
  async reap() {
    for (const s of this.opts.store.allSessions()) {
      if (this.expired(s)) await this.remove(s.id, s.expiresAt <= this.now() ? 'expired' : 'idle');
    }
    for (const id of [...this.leftovers]) {
      try {
        await this.opts.provider.removeSandbox(id);
        this.leftovers.delete(id);
      } catch {
        /* still away */
      }
    }
  }

  // ---- planned maintenance: draining a machine ----

  /**
   * The drain of a session's machine: while the session runs there (ended false), or the drain that ended it
   * (ended true). Undefined otherwise. `deadline` in ms.
   */
  maintenance(id: string): { member: string; deadline: number; ended: boolean } | undefined {
    const l = this.lost.get(id);
    if (l) return l.why === 'maintenance' && l.deadline !== undefined ? { member: l.member, deadline: l.deadline, ended: true } : undefined;
    const member = this.where.get(id);
    const d = member === undefined ? undefined : this.drains.get(member);
    return member !== undefined && d ? { member, deadline: d.deadline, ended: false } : undefined;
  }

  /** A learner terminal opened on a session (it is in use while one is open); call the result when it closes. */
  terminalOpened(id: string): () => void {
    this.terminals.set(id, (this.terminals.get(id) ?? 0) + 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      const n = (this.terminals.get(id) ?? 1) - 1;
      if (n > 0) this.terminals.set(id, n);
      else this.terminals.delete(id);
      // A page being reloaded closes its terminal and opens it again: the closing counts as use.
      this.usedAt.set(id, this.now());
    };
  }

  /**
   * In use: a learner terminal open, or the session used (or made) within drainIdleMs. Use before this process
   * started is unknown, so nothing counts as unused until drainIdleMs after the start.
   */
  inUse(id: string) {
    if (this.terminals.get(id)) return true;
    const last = Math.max(this.usedAt.get(id) ?? -Infinity, this.opts.store.getSession(id)?.createdAt ?? -Infinity, this.bornAt);
    return this.now() - last < (this.opts.drainIdleMs ?? DRAIN_IDLE_MS);
  }

  /** The machine holding a sandbox (asked of the provider once, then remembered), or null where unknown. */
  private async machineOfSandbox(id: string): Promise<string | null> {
    const known = this.where.get(id);
    if (known !== undefined) return known;
    const m = await this.opts.provider.machineOf?.(id).catch((err: unknown) => {
      this.emit('error', { err, reason: 'finding the machine of a sandbox', id });
      return null;
    });
    if (m) this.where.set(id, m);
    return m ?? null;
  }

  /** A session's sandbox was made again under its id (a workshop reset): where it is must be asked again. */
  placedAnew(id: string) {
    this.where.delete(id);
  }

  /** Finds the machine of every id not known yet, a few requests at a time. */
  private async locate(ids: string[]) {
    const unknown = ids.filter((id) => !this.where.has(id));
    for (let i = 0; i < unknown.length; i += 16) await Promise.all(unknown.slice(i, i + 16).map((id) => this.machineOfSandbox(id)));
  }

  private async onDrainingMachine(id: string) {
    if (!this.drains.size) return false;
    const m = await this.machineOfSandbox(id);
    return m !== null && this.drains.has(m);
  }

  /** The machines sandboxes may be placed on; 501 NO_MACHINES where there is one (a single host, Docker). */
  private async machinesOrRefuse(): Promise<Machine[]> {
    const list = this.opts.provider.setDrain ? await this.opts.provider.machineList?.() : null;
    if (!list) {
      throw new ApiError(
        501,
        'NO_MACHINES',
        'This server runs its sandboxes on one machine (a single host, or Docker): there is no machine to list or drain. Draining needs an Incus cluster.',
      );
    }
    return list;
  }

  /** The machines with how many of this server's sessions each holds and their drains (drained: none left there). */
  async machineList(): Promise<MachineView[]> {
    const list = await this.machinesOrRefuse();
    const live = this.opts.store.allSessions().filter((s) => !this.lost.has(s.id));
    await this.locate(live.map((s) => s.id));
    this.noteDrains(list);
    const count = new Map<string, number>();
    for (const s of live) {
      const m = this.where.get(s.id);
      if (m !== undefined) count.set(m, (count.get(m) ?? 0) + 1);
    }
    return list.map((m) => ({
      name: m.name,
      status: m.status,
      sessions: count.get(m.name) ?? 0,
      drain: m.drain ? { ...m.drain, drained: !count.get(m.name) } : null,
    }));
  }

  private async machineView(name: string) {
    const m = (await this.machineList()).find((x) => x.name === name);
    if (!m) throw new ApiError(404, 'MACHINE_NOT_FOUND', `No machine called ${JSON.stringify(name)}.`);
    return m;
  }

  /**
   * Starts draining a machine (or moves the deadline of its drain): no new session is placed there, this server's
   * sessions on it end as soon as they are not in use and the rest at `deadline` (ms). Applied at once.
   */
  async startDrain(name: string, deadline: number) {
    const m = (await this.machinesOrRefuse()).find((x) => x.name === name);
    if (!m) throw new ApiError(404, 'MACHINE_NOT_FOUND', `No machine called ${JSON.stringify(name)}.`);
    await this.opts.provider.setDrain!(name, { deadline, started: m.drain?.started ?? this.now() });
    await this.drainTick();
    return this.machineView(name);
  }

  /** Ends a machine's drain: new sessions may go there again; sessions already ended stay ended. */
  async cancelDrain(name: string) {
    const m = (await this.machinesOrRefuse()).find((x) => x.name === name);
    if (!m) throw new ApiError(404, 'MACHINE_NOT_FOUND', `No machine called ${JSON.stringify(name)}.`);
    if (m.drain) await this.opts.provider.setDrain!(name, null);
    await this.drainTick();
    return this.machineView(name);
  }

  /** Takes the drains the provider reports; learners on a machine whose drain began, moved or ended hear of it. */
  private noteDrains(list: Machine[]) {
    const next = new Map<string, Drain>();
    for (const m of list) if (m.drain) next.set(m.name, m.drain);
    const changed = new Set([...next.keys(), ...this.drains.keys()].filter((m) => next.get(m)?.deadline !== this.drains.get(m)?.deadline));
    const machinesChanged = next.size !== this.drains.size || [...next.keys()].some((m) => !this.drains.has(m));
    this.drains = next;
    if (machinesChanged) this.emit('drains', {});
    for (const m of this.drained) if (!next.has(m)) this.drained.delete(m);
    for (const [id, m] of this.where) if (changed.has(m) && !this.lost.has(id) && this.opts.store.getSession(id)) this.emit('draining', { id });
  }

  /**
   * The drain rules, every few seconds (main.ts) and at once when this server starts or ends a drain. On a
   * draining machine each of this server's sessions is ended as soon as it is not in use (no learner terminal
   * open, no use for drainIdleMs), every one at the deadline; an ended session answers its learner 503
   * MACHINE_MAINTENANCE. Ready warm sandboxes there are removed (the pool refills elsewhere). A draining machine
   * with none of this server's sessions left is announced once ('drained'). Returns how many sessions it ended.
   */
  async drainTick(): Promise<number> {
    const list = this.opts.provider.setDrain ? await this.opts.provider.machineList?.() : null;
    if (!list) return 0;
    const live = this.opts.store.allSessions().filter((s) => !this.lost.has(s.id));
    if (list.some((m) => m.drain)) await this.locate([...live.map((s) => s.id), ...this.pool.ready]);
    this.noteDrains(list);
    if (!this.drains.size) return 0;
    const t = this.now();
    let ended = 0;
    const left = new Map<string, number>();
    for (const s of live) {
      const m = this.where.get(s.id);
      const d = m === undefined ? undefined : this.drains.get(m);
      if (m === undefined || !d) continue;
      if (t >= d.deadline || !this.inUse(s.id)) {
        await this.endForMaintenance(s.id, m, d);
        ended++;
      } else left.set(m, (left.get(m) ?? 0) + 1);
    }
    for (const id of [...this.pool.ready]) {
      const m = this.where.get(id);
      if (m !== undefined && this.drains.has(m)) {
        this.pool.discard(id);
        this.where.delete(id);
      }
    }
    for (const m of this.drains.keys()) {
      if (left.get(m) || this.drained.has(m)) continue;
      this.drained.add(m);
      this.emit('drained', { reason: m });
    }
    return ended;
  }

  /** Ends a session for its machine's maintenance: its sandbox goes now, its row stays to tell its learner why. */
  private async endForMaintenance(id: string, member: string, d: Drain) {
    if (this.lost.has(id)) return;
    this.markLost(id, member, 'maintenance', d.deadline);
    this.where.delete(id);
    await this.removeOrLater(id, 'removing a sandbox ended for maintenance');
  }

  /** Removes a sandbox from its engine; one that cannot be removed now is a leftover, which the reaper tries again. */
  private async removeOrLater(id: string, what: string) {
    try {
      await this.opts.provider.removeSandbox(id);
    } catch (err) {
      this.leftovers.add(id);
      this.emit('error', { err, reason: `${what} (tried again later)`, id });
    }
  }

  async shutdown() {
    await this.pool.drain();
  }
}

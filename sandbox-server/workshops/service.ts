// Workshops: a class of learners on this server. Instructors create them; learners join with a code and a
// name and get an ordinary session; progress and check results are recorded; the end removes every
// sandbox and keeps the results. The HTTP surface is routes.ts; the instructor terminal is shadow.ts.
import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { hashToken, newId, tokenMatches } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { Limits } from '../engine/node-spec.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { LessonCatalog } from '../lesson-catalog.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { FeedEvent } from '../sandboxes/session-feed.ts';
import type { SessionRow, Store } from '../store.ts';
import type { CapacityMeter } from './capacity.ts';
import type { Learner, SandboxState, Workshop, WorkshopDb, WorkshopLimits } from './db.ts';

/** Learners may join this long before the start (to be seated when it begins). */
export const DOORS_OPEN_MS = 30 * 60_000;
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I/L: codes are read aloud and typed
const CODE_LENGTH = 6;

export type Logger = { info: (o: object, m: string) => void; warn: (o: object, m: string) => void; error: (o: object, m: string) => void };

export type ServiceDeps = {
  db: WorkshopDb;
  store: Store;
  manager: SandboxManager;
  provider: SandboxProvider;
  lessons: LessonCatalog;
  capacity: CapacityMeter;
  log: Logger;
  serverLimits: Limits;
  maxNodes: number;
  basePoolSize: number;
  prewarmLeadMs: number;
  idleMs: number;
  /** Forgets the terminals' replay of a session whose shells are gone (a reset rebuilt its sandbox). */
  forgetTerminals?: (sessionId: string) => void;
  now?: () => number;
};

export type CreateInput = {
  title: string;
  lessons: string[];
  startsAt?: number;
  endsAt: number;
  capacity: number;
  expectedLearners?: number;
  limits?: Partial<WorkshopLimits>;
  nodesPerLearner?: number;
  stuckMinutes?: number;
};

export type ProgressInput = {
  lesson: string;
  step?: string;
  checksPassed?: string[];
  quiz?: { id: string; answer: string | string[]; correct?: boolean }[];
  after?: number;
};

export type LearnerRow = {
  id: string;
  name: string;
  lesson: string | null;
  step: string | null;
  /** Titles for the dashboard's "Lesson · step" (ids stay for sorting and links). */
  lessonTitle: string | null;
  stepTitle: string | null;
  checksPassed: number;
  checksVerified: number;
  quizAnswered: number;
  joinedAt: string;
  lastActivityAt: string;
  lastProgressAt: string | null;
  sandbox: SandboxState;
  /** When the sandbox's machine goes (or went) down for planned maintenance: the dashboard shows who is affected. */
  maintenanceAt: string | null;
  stuck: boolean;
};

export type WorkshopEvent =
  | { type: 'learner'; data: LearnerRow }
  | { type: 'workshop'; data: ReturnType<WorkshopService['view']> & { pool: ReturnType<WorkshopService['pool']> } }
  | { type: 'message'; data: { id: number; text: string; at: string } }
  | { type: 'watch'; data: WatchState & { learner: string } };

/** Whether an instructor has a learner's terminal open, and whether they are typing into it. */
export type WatchState = { watching: boolean; takeover: boolean; by: string[] };

const iso = (t: number) => new Date(t).toISOString();
export const normalizeCode = (code: string) => code.toUpperCase().replace(/[^A-Z0-9]/g, '');
export const nameKey = (name: string) => name.normalize('NFKC').toLocaleLowerCase('en').replace(/\s+/g, ' ');

export class WorkshopService {
  deps: ServiceDeps;
  db: WorkshopDb;
  now: () => number;
  bus = new EventEmitter();
  /** Last row sent per learner, so that listeners only hear about real changes. */
  sent = new Map<string, string>();
  sentWorkshop = new Map<string, string>();
  busy = new Set<string>();
  ending = new Set<string>();
  /** Open instructor terminals per learner: connection id → instructor name and take-over. */
  watchers = new Map<string, Map<string, { name: string; takeover: boolean }>>();

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    this.db = deps.db;
    this.now = deps.now ?? Date.now;
    this.bus.setMaxListeners(0);
  }

  // ---- instructor side ----

  create(input: CreateInput): Workshop {
    const t = this.now();
    const startsAt = input.startsAt ?? t;
    if (input.endsAt <= Math.max(startsAt, t)) throw new ApiError(400, 'VALIDATION_FAILED', 'endsAt must be after startsAt and in the future.');
    for (const l of input.lessons) this.deps.lessons.seedFiles(l); // unknown lesson: 404 now, not at the first join
    const nodes = input.nodesPerLearner ?? 1;
    if (nodes > this.deps.maxNodes) throw new ApiError(400, 'VALIDATION_FAILED', `nodesPerLearner: this server allows at most ${this.deps.maxNodes}.`);
    const limits = this.limitsFor(input.limits ?? {});
    const w: Workshop = {
      id: newId(),
      code: this.newCode(),
      title: input.title,
      lessons: input.lessons,
      startsAt,
      endsAt: input.endsAt,
      capacity: input.capacity,
      expected: Math.min(input.expectedLearners ?? input.capacity, input.capacity),
      limits,
      nodesPerLearner: nodes,
      stuckMinutes: input.stuckMinutes ?? 10,
      createdAt: t,
      prewarmAt: null,
      endedAt: null,
      endReason: null,
    };
    this.db.insertWorkshop(w);
    this.deps.log.info({ workshop: w.id, title: w.title, capacity: w.capacity, startsAt: iso(startsAt), endsAt: iso(w.endsAt) }, 'workshop created');
    this.updatePool();
    return w;
  }

  /** A workshop may tighten the server's limits, never loosen them: warm engines are made with the server's. */
  limitsFor(l: Partial<WorkshopLimits>): WorkshopLimits {
    const s = this.deps.serverLimits;
    const out = { memoryBytes: l.memoryBytes ?? s.memoryBytes, nanoCpus: l.nanoCpus ?? s.nanoCpus, pids: l.pids ?? s.pids };
    const over = (
      [
        ['memory', out.memoryBytes, s.memoryBytes],
        ['cpus', out.nanoCpus, s.nanoCpus],
        ['pids', out.pids, s.pids],
      ] as const
    )
      .filter(([, v, max]) => v > max)
      .map(([k]) => k);
    if (over.length) throw new ApiError(400, 'VALIDATION_FAILED', `limits.${over.join(', limits.')}: above this server's per-node limit (BERTH_SANDBOX_*).`);
    if (out.memoryBytes < 256 * 1024 ** 2)
      throw new ApiError(400, 'VALIDATION_FAILED', 'limits.memory: at least 256m (an idle learner engine needs about a third of that).');
    return out;
  }

  newCode(): string {
    for (;;) {
      const code = Array.from({ length: CODE_LENGTH }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
      if (!this.db.byCode(code)) return code;
    }
  }

  get(id: string): Workshop {
    const w = this.db.workshop(id);
    if (!w) throw new ApiError(404, 'WORKSHOP_NOT_FOUND', `No workshop ${JSON.stringify(id)}.`);
    return w;
  }

  learnerOf(w: Workshop, learnerId: string): Learner {
    const l = this.db.learner(learnerId);
    if (!l || l.workshopId !== w.id) throw new ApiError(404, 'LEARNER_NOT_FOUND', `No learner ${JSON.stringify(learnerId)} in this workshop.`);
    return l;
  }

  state(w: Workshop): 'scheduled' | 'open' | 'running' | 'ended' {
    const t = this.now();
    if (w.endedAt !== null || t >= w.endsAt) return 'ended';
    if (t >= w.startsAt) return 'running';
    return t >= w.startsAt - DOORS_OPEN_MS ? 'open' : 'scheduled';
  }

  view(w: Workshop) {
    return {
      id: w.id,
      code: w.code,
      title: w.title,
      lessons: w.lessons,
      startsAt: iso(w.startsAt),
      endsAt: iso(w.endsAt),
      capacity: w.capacity,
      expectedLearners: w.expected,
      nodesPerLearner: w.nodesPerLearner,
      stuckMinutes: w.stuckMinutes,
      limits: { memoryBytes: w.limits.memoryBytes, cpus: w.limits.nanoCpus / 1e9, pids: w.limits.pids, diskBytes: this.deps.serverLimits.diskBytes },
      state: this.state(w),
      createdAt: iso(w.createdAt),
      endedAt: w.endedAt === null ? null : iso(w.endedAt),
      endReason: w.endReason,
      seated: this.db.seated(w.id),
      learners: this.db.learners(w.id).length,
    };
  }

  update(w: Workshop, p: { title?: string; startsAt?: number; endsAt?: number; capacity?: number; expectedLearners?: number; stuckMinutes?: number }) {
    if (w.endedAt !== null) throw new ApiError(409, 'WORKSHOP_ENDED', 'This workshop has ended; its results can be read but not changed.');
    const startsAt = p.startsAt ?? w.startsAt;
    if ((p.endsAt ?? w.endsAt) <= Math.max(this.now(), startsAt))
      throw new ApiError(400, 'VALIDATION_FAILED', 'endsAt must be after the start and in the future.');
    const capacity = p.capacity ?? w.capacity;
    this.db.updateWorkshop(w.id, {
      title: p.title,
      startsAt: p.startsAt,
      endsAt: p.endsAt,
      capacity: p.capacity,
      stuckMinutes: p.stuckMinutes,
      expected: p.expectedLearners !== undefined || p.capacity !== undefined ? Math.min(p.expectedLearners ?? w.expected, capacity) : undefined,
    });
    const now = this.get(w.id);
    // Sessions live exactly as long as their workshop.
    if (p.endsAt !== undefined)
      for (const l of this.db.learners(w.id)) if (l.sessionId && this.live(l)) this.deps.store.updateSession(l.sessionId, { expiresAt: now.endsAt });
    this.sendWorkshop(now);
    this.updatePool();
    return now;
  }

  rows(w: Workshop): LearnerRow[] {
    const counts = this.db.counts(w.id);
    return this.db.learners(w.id).map((l) => this.row(w, l, counts.get(l.id)));
  }

  row(w: Workshop, l: Learner, c = this.db.counts(w.id).get(l.id)): LearnerRow {
    const t = this.now();
    const running = w.endedAt === null && t >= w.startsAt && t < w.endsAt;
    const since = Math.max(l.lastProgressAt ?? l.joinedAt, w.startsAt);
    const titles = l.lesson ? this.deps.lessons.titles?.(l.lesson, l.step) : null;
    return {
      id: l.id,
      name: l.name,
      lesson: l.lesson,
      step: l.step,
      lessonTitle: titles?.lesson ?? null,
      stepTitle: titles?.step ?? null,
      checksPassed: c?.passed ?? 0,
      checksVerified: c?.verified ?? 0,
      quizAnswered: c?.quiz ?? 0,
      joinedAt: iso(l.joinedAt),
      lastActivityAt: iso(l.lastActivityAt),
      lastProgressAt: l.lastProgressAt === null ? null : iso(l.lastProgressAt),
      sandbox: l.sandbox,
      maintenanceAt: this.maintenanceAt(l),
      stuck: running && l.sandbox === 'ready' && t - since >= w.stuckMinutes * 60_000,
    };
  }

  private maintenanceAt(l: Learner): string | null {
    const m = l.sessionId && this.live(l) ? this.deps.manager.maintenance(l.sessionId) : undefined;
    return m ? iso(m.deadline) : null;
  }

  broadcast(w: Workshop, text: string) {
    if (this.state(w) === 'ended') throw new ApiError(409, 'WORKSHOP_ENDED', 'This workshop has ended; nobody is left to read the message.');
    const m = this.db.addMessage(w.id, text, this.now());
    const out = { id: m.id, text: m.text, at: iso(m.at) };
    this.emit(w.id, { type: 'message', data: out });
    return out;
  }

  messages(w: Workshop, after = 0) {
    return this.db.messages(w.id, after).map((m) => ({ id: m.id, text: m.text, at: iso(m.at) }));
  }

  /** Rebuilds a learner's sandbox from nothing under the same session id and token: their terminals reconnect to it. */
  async reset(w: Workshop, learnerId: string) {
    const l = this.learnerOf(w, learnerId);
    if (this.state(w) === 'ended') throw new ApiError(409, 'WORKSHOP_ENDED', 'This workshop has ended.');
    const s = l.sessionId ? this.deps.store.getSession(l.sessionId) : undefined;
    if (!s || l.sandbox === 'gone' || l.sandbox === 'removed' || l.sandbox === 'lost') {
      throw new ApiError(409, 'NO_SANDBOX', `${l.name} has no sandbox any more; they can join again with the same name from the same browser.`);
    }
    if (this.busy.has(l.id)) throw new ApiError(409, 'CONFLICT', `${l.name}'s sandbox is already being reset or created.`);
    this.busy.add(l.id);
    const t0 = performance.now();
    try {
      this.setSandbox(w, l.id, 'resetting');
      await this.deps.provider.removeSandbox(s.id);
      this.deps.forgetTerminals?.(s.id);
      await this.deps.provider.createSandbox(s.id, s.nodes, { ...this.deps.serverLimits, ...w.limits }, { forLearner: true });
      // Made anew, perhaps on another machine (never on one being drained).
      this.deps.manager.placedAnew(s.id);
      if (this.get(w.id).endedAt !== null) {
        await this.deps.provider.removeSandbox(s.id);
        throw new ApiError(409, 'WORKSHOP_ENDED', 'The workshop ended during the reset.');
      }
      for (const lesson of l.seeded) {
        const files = this.deps.lessons.seedFiles(lesson);
        if (files.length) await this.deps.manager.seed(s.id, s.nodes, files);
      }
      this.deps.store.updateSession(s.id, { lastActivityAt: this.now() });
      this.setSandbox(w, l.id, 'ready');
      const ms = Math.round(performance.now() - t0);
      this.deps.log.info({ workshop: w.id, learner: l.id, ms }, 'learner sandbox reset');
      return { sandbox: 'ready' as const, ms };
    } catch (err) {
      // The session stays; whatever was half made is found by the next tick (or the next reset).
      if (this.get(w.id).endedAt === null) this.setSandbox(w, l.id, this.deps.store.getSession(s.id) ? 'ready' : 'gone');
      throw err;
    } finally {
      this.busy.delete(l.id);
    }
  }

  /** Ends a workshop: no more joins, every learner sandbox removed, the results kept. Idempotent. */
  async end(w: Workshop, reason: 'instructor' | 'time') {
    if (this.ending.has(w.id)) return this.get(w.id);
    const first = this.db.markEnded(w.id, this.now(), reason);
    // Calling it again retries removals that failed the first time.
    const todo = this.db.learners(w.id).filter((l) => l.sessionId && this.live(l));
    if (!first && !todo.length) return this.get(w.id);
    this.ending.add(w.id);
    const t0 = performance.now();
    try {
      if (first) this.sendWorkshop(this.get(w.id));
      this.updatePool();
      // A few at a time: removal is engine work (containers, networks, loop disks), and the host has two cores.
      const queue = [...todo];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let l = queue.shift(); l; l = queue.shift()) {
            try {
              await this.deps.manager.remove(l.sessionId!, 'workshop-ended');
            } catch (err) {
              this.deps.log.error({ err, workshop: w.id, learner: l.id }, 'removing a learner sandbox at the end failed');
              continue;
            }
            this.setSandbox(this.get(w.id), l.id, 'removed');
          }
        }),
      );
      this.deps.manager.trimPool();
      this.sendWorkshop(this.get(w.id));
      this.deps.log.info({ workshop: w.id, reason, removed: todo.length, ms: Math.round(performance.now() - t0) }, 'workshop ended');
    } finally {
      this.ending.delete(w.id);
    }
    return this.get(w.id);
  }

  /** Starts warming the pool for this workshop now, whatever its start time. */
  prewarm(w: Workshop, expected?: number) {
    if (this.state(w) === 'ended') throw new ApiError(409, 'WORKSHOP_ENDED', 'This workshop has ended.');
    this.db.updateWorkshop(w.id, { prewarmAt: this.now(), expected: expected === undefined ? undefined : Math.min(expected, w.capacity) });
    this.updatePool();
    return this.pool();
  }

  pool() {
    return this.deps.manager.poolStatus();
  }

  /** The pool holds the server's base size plus, for each workshop about to start or running, its empty seats. */
  poolTarget(): { target: number; extra: number } {
    const t = this.now();
    let extra = 0;
    for (const w of this.db.open()) {
      // Warm engines have one node; a workshop with more nodes per learner gets cold sandboxes.
      if (w.nodesPerLearner !== 1 || t >= w.endsAt) continue;
      if (t < w.startsAt - this.deps.prewarmLeadMs && w.prewarmAt === null) continue;
      extra += Math.max(0, w.expected - this.db.seated(w.id));
    }
    return { target: this.deps.basePoolSize + Math.min(extra, this.deps.capacity.roomFor()), extra };
  }

  updatePool() {
    const { target, extra } = this.poolTarget();
    this.deps.manager.setPoolTarget(target);
    // Growing the pool for a class is measured as it starts (from its first warm engine); the sample then bounds it.
    if (extra > 0 && !this.deps.capacity.sample) {
      void this.deps.capacity.measure().catch((err: unknown) => this.deps.log.warn({ err }, 'measuring an idle engine failed'));
    }
  }

  // ---- learner side ----

  async join(input: { code: string; name: string; key?: string }, client: string) {
    const w = this.db.byCode(normalizeCode(input.code));
    if (!w) throw new ApiError(404, 'JOIN_CODE_INVALID', 'No workshop has this code. Check it with your instructor.');
    const state = this.state(w);
    if (state === 'ended') throw new ApiError(410, 'WORKSHOP_ENDED', `"${w.title}" has ended.`);
    if (state === 'scheduled') throw new ApiError(409, 'WORKSHOP_NOT_OPEN', `"${w.title}" opens for joining at ${iso(w.startsAt - DOORS_OPEN_MS)}.`);
    const name = input.name.normalize('NFC').trim().replace(/\s+/g, ' ');
    const key = nameKey(name);
    const existing = this.db.learnerByName(w.id, key);
    let learner: Learner;
    const keyToken = randomBytes(18).toString('base64url');
    if (existing) {
      // The same person back from the same browser, whose sandbox went away: a new sandbox, the same results.
      const again =
        input.key && tokenMatches(input.key, existing.keyHash) && (existing.sandbox === 'gone' || existing.sandbox === 'lost') && !this.busy.has(existing.id);
      if (!again) throw new ApiError(409, 'NAME_TAKEN', `Someone in this workshop is already called "${existing.name}". Pick another name.`);
      learner = existing;
      // A sandbox lost with its machine is removed (as far as its machine lets it) before the new one is made.
      if (existing.sandbox === 'lost' && existing.sessionId) {
        await this.deps.manager
          .remove(existing.sessionId, 'machine-lost')
          .catch((err: unknown) => this.deps.log.warn({ err }, 'removing a lost sandbox failed'));
      }
      this.db.updateLearner(learner.id, { sandbox: 'joining' });
    } else {
      if (this.db.seated(w.id) >= w.capacity)
        throw new ApiError(409, 'WORKSHOP_FULL', `"${w.title}" is full (${w.capacity} learner${w.capacity === 1 ? '' : 's'}).`);
      const t = this.now();
      learner = {
        id: newId(),
        workshopId: w.id,
        name,
        nameKey: key,
        keyHash: hashToken(keyToken),
        sessionId: null,
        joinedAt: t,
        lesson: w.lessons[0] ?? null,
        step: null,
        lastProgressAt: null,
        lastActivityAt: t,
        keepaliveAt: null,
        sandbox: 'joining',
        seeded: [],
      };
      // The row is the seat: inserted before any await, so concurrent joins cannot overfill or share a name.
      this.db.insertLearner(learner);
    }
    if (existing && this.db.seated(w.id) > w.capacity) {
      this.db.updateLearner(learner.id, { sandbox: 'gone' });
      throw new ApiError(409, 'WORKSHOP_FULL', `"${w.title}" is full (${w.capacity} learner${w.capacity === 1 ? '' : 's'}).`);
    }
    this.busy.add(learner.id);
    this.updatePool();
    const t0 = performance.now();
    let created: Awaited<ReturnType<SandboxManager['create']>>;
    try {
      created = await this.deps.manager.create({ lesson: w.lessons[0], nodes: w.nodesPerLearner, client });
      try {
        if (this.differs(w.limits)) {
          const update = this.deps.provider.updateLimits?.bind(this.deps.provider);
          if (!update) throw new ApiError(503, 'SANDBOX_FAILED', 'This engine cannot apply per-workshop limits.');
          await Promise.all(created.nodes.map((n) => update(created.id, n.name, w.limits)));
        }
        this.deps.store.updateSession(created.id, { expiresAt: w.endsAt });
        if (this.get(w.id).endedAt !== null) throw new ApiError(410, 'WORKSHOP_ENDED', `"${w.title}" has ended.`);
      } catch (err) {
        await this.deps.manager.remove(created.id, 'workshop-join-failed');
        throw err;
      }
    } catch (err) {
      if (existing) this.db.updateLearner(learner.id, { sandbox: 'gone' });
      else this.db.deleteLearner(learner.id);
      this.updatePool();
      throw err;
    } finally {
      this.busy.delete(learner.id);
    }
    const t = this.now();
    this.db.updateLearner(learner.id, {
      // The key changes with each join; until this one succeeded the browser's old key stayed valid.
      sessionId: created.id,
      sandbox: 'ready',
      lastActivityAt: t,
      keepaliveAt: null,
      keyHash: hashToken(keyToken),
      seeded: [...new Set([...(existing?.seeded ?? []), ...(w.lessons[0] ? [w.lessons[0]] : [])])],
    });
    if (existing)
      for (const lesson of existing.seeded.filter((x) => x !== w.lessons[0])) {
        const files = this.deps.lessons.seedFiles(lesson);
        if (files.length)
          await this.deps.manager
            .seed(
              created.id,
              created.nodes.map((n) => n.name),
              files,
            )
            .catch((err: unknown) => this.deps.log.warn({ err }, 'reseeding a returning learner failed'));
      }
    this.changed(w, learner.id);
    this.sendWorkshop(w);
    this.deps.log.info(
      { workshop: w.id, learner: learner.id, session: created.id, ms: Math.round(performance.now() - t0), again: !!existing },
      'learner joined',
    );
    return {
      learner: { id: learner.id, name, key: keyToken },
      workshop: this.learnerView(w),
      session: { ...created, expiresAt: iso(w.endsAt) },
    };
  }

  differs(l: WorkshopLimits) {
    const s = this.deps.serverLimits;
    return l.memoryBytes !== s.memoryBytes || l.nanoCpus !== s.nanoCpus || l.pids !== s.pids;
  }

  learnerView(w: Workshop) {
    return { id: w.id, code: w.code, title: w.title, lessons: w.lessons, startsAt: iso(w.startsAt), endsAt: iso(w.endsAt), state: this.state(w) };
  }

  /** What a joining learner may see before joining: enough to show the title and whether there is room. */
  preview(code: string) {
    const w = this.db.byCode(normalizeCode(code));
    if (!w) throw new ApiError(404, 'JOIN_CODE_INVALID', 'No workshop has this code. Check it with your instructor.');
    return { ...this.learnerView(w), seatsLeft: Math.max(0, w.capacity - this.db.seated(w.id)) };
  }

  forSession(s: SessionRow) {
    const l = this.db.learnerBySession(s.id);
    return l && { learner: l, workshop: this.get(l.workshopId) };
  }

  /** The learner's view of their workshop, with broadcasts after a cursor: what the site polls. */
  info(s: SessionRow, after = 0) {
    const f = this.forSession(s);
    if (!f) throw new ApiError(404, 'NOT_IN_WORKSHOP', 'This session does not belong to a workshop.');
    return { workshop: this.learnerView(f.workshop), learner: { id: f.learner.id, name: f.learner.name }, messages: this.messages(f.workshop, after) };
  }

  async progress(s: SessionRow, p: ProgressInput) {
    const f = this.forSession(s);
    if (!f) return { recorded: false, messages: [] };
    const { learner: l, workshop: w } = f;
    this.deps.lessons.seedFiles(p.lesson); // an unknown lesson is a 404, as everywhere
    // Every check named must be one of the lesson's own (404 CHECK_NOT_FOUND), before anything is recorded.
    for (const id of p.checksPassed ?? []) this.deps.lessons.check(p.lesson, id);
    const t = this.now();
    let progressed = p.lesson !== l.lesson || (p.step !== undefined && p.step !== l.step);
    for (const id of p.checksPassed ?? []) progressed = this.db.recordCheck(l.id, p.lesson, id, true, false, t) || progressed;
    for (const q of p.quiz ?? []) {
      const answer = Array.isArray(q.answer) ? q.answer.join('|') : q.answer;
      progressed = this.db.recordQuiz(l.id, p.lesson, q.id, answer, this.judge(p.lesson, q), t) || progressed;
    }
    // A workshop lesson's files are written into the workspace the first time the learner opens it.
    if (w.lessons.includes(p.lesson) && !l.seeded.includes(p.lesson)) {
      const files = this.deps.lessons.seedFiles(p.lesson);
      if (files.length) await this.deps.manager.seed(s.id, s.nodes, files);
      this.db.updateLearner(l.id, { seeded: [...l.seeded, p.lesson] });
    }
    this.db.updateLearner(l.id, {
      lesson: p.lesson,
      step: p.step ?? (p.lesson === l.lesson ? l.step : null),
      lastActivityAt: t,
      ...(progressed ? { lastProgressAt: t } : {}),
    });
    this.changed(w, l.id);
    return { recorded: true, messages: this.messages(w, p.after ?? 0) };
  }

  /** A quiz answer is judged here (option numbers), never taken from the page; null when it cannot be read. */
  judge(lesson: string, q: { id: string; answer: string | string[] }): boolean | null {
    const chosen = (Array.isArray(q.answer) ? q.answer : q.answer.split('|')).map(Number);
    if (!this.deps.lessons.answer || !chosen.length || chosen.some((n) => !Number.isInteger(n))) return null;
    try {
      return this.deps.lessons.answer(lesson, q.id, chosen).correct;
    } catch {
      return null;
    }
  }

  // ---- what a learner's page hears (sandboxes/session-feed.ts) ----

  /** Pushes the learner's workshop (state, title, their name), broadcasts after `after`, and the instructor's watching. */
  learnerFeed(s: SessionRow, after: number, push: (e: FeedEvent) => void): (() => void) | null {
    const f = this.forSession(s);
    if (!f) return null;
    const { learner: l, workshop: w } = f;
    push({ event: 'workshop', data: { workshop: this.learnerView(w), learner: { id: l.id, name: l.name } } });
    for (const m of this.messages(w, after)) push({ event: 'message', data: m });
    push({ event: 'watch', data: this.watchState(l.id) });
    return this.subscribe(w.id, (e) => {
      if (e.type === 'workshop') push({ event: 'workshop', data: { workshop: this.learnerView(this.get(w.id)), learner: { id: l.id, name: l.name } } });
      else if (e.type === 'message') push({ event: 'message', data: e.data });
      else if (e.type === 'watch' && e.data.learner === l.id) push({ event: 'watch', data: e.data });
    });
  }

  /** Each node of the learner's sandbox with the terminal tabs open on it (a node that does not answer has none). */
  async tabs(l: Learner) {
    const s = l.sessionId ? this.deps.store.getSession(l.sessionId) : undefined;
    if (!s || !this.live(l) || l.sandbox === 'lost') return [];
    return Promise.all(
      s.nodes.map(async (node) => {
        const r = await this.deps.provider
          .run(s.id, node, 'cd /tmp && for f in .berth-tab-*; do [ -S "$f" ] && echo "${f#.berth-tab-}"; done; true', { timeoutMs: 5000, maxOutput: 4096 })
          .catch(() => ({ stdout: '' }));
        const tabs = r.stdout.split('\n').filter((t) => /^[a-z0-9-]{1,16}$/i.test(t));
        tabs.sort((a, b) => (Number(a) || 1e9) - (Number(b) || 1e9) || a.localeCompare(b));
        return { name: node, tabs };
      }),
    );
  }

  watchState(learnerId: string): WatchState {
    const open = [...(this.watchers.get(learnerId)?.values() ?? [])];
    return { watching: open.length > 0, takeover: open.some((o) => o.takeover), by: [...new Set(open.map((o) => o.name))] };
  }

  /** The instructor terminal (shadow.ts) opened (info) or closed (null) one of a learner's terminals. */
  watch(w: Workshop, learnerId: string, conn: string, info: { name: string; takeover: boolean } | null) {
    const open = this.watchers.get(learnerId) ?? new Map<string, { name: string; takeover: boolean }>();
    if (info) open.set(conn, info);
    else open.delete(conn);
    if (open.size) this.watchers.set(learnerId, open);
    else this.watchers.delete(learnerId);
    this.emit(w.id, { type: 'watch', data: { learner: learnerId, ...this.watchState(learnerId) } });
  }

  /** Called after the server ran a check for a session: a workshop learner's result is kept. */
  recordCheck(s: SessionRow, lesson: string, checkId: string, passed: boolean) {
    const f = this.forSession(s);
    if (!f) return;
    const t = this.now();
    const progressed = this.db.recordCheck(f.learner.id, lesson, checkId, passed, true, t);
    this.db.updateLearner(f.learner.id, { lastActivityAt: t, ...(progressed ? { lastProgressAt: t } : {}) });
    this.changed(f.workshop, f.learner.id);
  }

  activity(s: SessionRow) {
    const l = this.db.learnerBySession(s.id);
    if (!l) return;
    this.db.updateLearner(l.id, { lastActivityAt: this.now() });
    this.changed(this.get(l.workshopId), l.id);
  }

  /** At start-up, before the first tick: joins and resets cut off by the restart are settled. */
  recover() {
    this.db.recoverInterrupted((id) => !!this.deps.store.getSession(id));
  }

  /** A workshop learner rebuilds their own sandbox (same session and token), instead of leaving the workshop. */
  async resetOwn(s: SessionRow) {
    const f = this.forSession(s);
    if (!f) throw new ApiError(404, 'NOT_IN_WORKSHOP', 'This session does not belong to a workshop.');
    return this.reset(f.workshop, f.learner.id);
  }

  // ---- time ----

  /** Every few seconds: ends workshops at their time, keeps learner sessions alive while their workshop runs,
   * notices sandboxes that went away, and tells listeners about rows that changed (a learner becoming stuck). */
  async tick() {
    const t = this.now();
    for (const w of this.db.endedWithSandboxes()) await this.end(w, w.endReason === 'time' ? 'time' : 'instructor');
    for (const w of this.db.open()) {
      if (t >= w.endsAt) {
        await this.end(w, 'time');
        continue;
      }
      for (const l of this.db.learners(w.id)) this.reconcile(w, l, t);
      this.emitRows(w);
    }
    this.updatePool();
    for (const w of this.db.open()) this.sendWorkshop(w);
  }

  reconcile(w: Workshop, l: Learner, t: number) {
    if (!l.sessionId || this.busy.has(l.id) || (l.sandbox !== 'ready' && l.sandbox !== 'resetting')) return;
    const s = this.deps.store.getSession(l.sessionId);
    if (!s) {
      this.db.updateLearner(l.id, { sandbox: 'gone' });
      return;
    }
    // Its machine went away (manager.findLost): the instructor sees who was affected; the learner can rejoin.
    if (this.deps.manager.lostMember(s.id)) {
      this.db.updateLearner(l.id, { sandbox: 'lost' });
      return;
    }
    // Terminal input and exec touch the session; our own keep-alive touches are not the learner's doing.
    if (s.lastActivityAt > l.lastActivityAt && s.lastActivityAt !== l.keepaliveAt) this.db.updateLearner(l.id, { lastActivityAt: s.lastActivityAt });
    // During a workshop the instructor's clock rules, not the idle timeout: a learner listening for half an hour keeps their sandbox.
    if (t - s.lastActivityAt > this.deps.idleMs / 2) {
      this.deps.store.updateSession(s.id, { lastActivityAt: t });
      this.db.updateLearner(l.id, { keepaliveAt: t });
    }
    if (s.expiresAt !== w.endsAt) this.deps.store.updateSession(s.id, { expiresAt: w.endsAt });
  }

  live(l: Learner) {
    return l.sandbox === 'ready' || l.sandbox === 'resetting' || l.sandbox === 'joining' || l.sandbox === 'lost';
  }

  setSandbox(w: Workshop, learnerId: string, state: SandboxState) {
    this.db.updateLearner(learnerId, { sandbox: state });
    this.changed(w, learnerId);
  }

  // ---- events ----

  subscribe(workshopId: string, fn: (e: WorkshopEvent) => void) {
    this.bus.on(workshopId, fn);
    return () => {
      this.bus.off(workshopId, fn);
    };
  }

  emit(workshopId: string, e: WorkshopEvent) {
    this.bus.emit(workshopId, e);
  }

  changed(w: Workshop, learnerId: string) {
    const l = this.db.learner(learnerId);
    if (l) this.send(w, this.row(w, l));
  }

  emitRows(w: Workshop) {
    for (const r of this.rows(w)) this.send(w, r);
  }

  /** The workshop's header (state, seats, warm engines) to listeners, when it changed. */
  sendWorkshop(w: Workshop) {
    const data = { ...this.view(w), pool: this.pool() };
    const json = JSON.stringify(data);
    if (this.sentWorkshop.get(w.id) === json) return;
    this.sentWorkshop.set(w.id, json);
    this.emit(w.id, { type: 'workshop', data });
  }

  send(w: Workshop, r: LearnerRow) {
    const json = JSON.stringify(r);
    if (this.sent.get(r.id) === json) return;
    this.sent.set(r.id, json);
    this.emit(w.id, { type: 'learner', data: r });
  }
}

// Workshops, learners and their results in the server's SQLite file, beside (never inside) the sessions table.
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { z } from 'zod';

export type WorkshopLimits = { memoryBytes: number; nanoCpus: number; pids: number };

export type Workshop = {
  id: string;
  code: string;
  title: string;
  lessons: string[];
  startsAt: number;
  endsAt: number;
  capacity: number;
  expected: number;
  limits: WorkshopLimits;
  nodesPerLearner: number;
  stuckMinutes: number;
  createdAt: number;
  prewarmAt: number | null;
  endedAt: number | null;
  endReason: string | null;
};

/** Where a learner's sandbox is: being made, usable, being rebuilt, gone by itself, removed at the end, or lost with its machine. */
export type SandboxState = 'joining' | 'ready' | 'resetting' | 'gone' | 'removed' | 'lost';

export type Learner = {
  id: string;
  workshopId: string;
  name: string;
  nameKey: string;
  keyHash: string;
  sessionId: string | null;
  joinedAt: number;
  lesson: string | null;
  step: string | null;
  lastProgressAt: number | null;
  lastActivityAt: number;
  keepaliveAt: number | null;
  sandbox: SandboxState;
  seeded: string[];
};

export type CheckRecord = {
  lesson: string;
  checkId: string;
  passed: boolean;
  verified: boolean;
  attempts: number;
  firstPassedAt: number | null;
  lastAt: number;
};
export type QuizRecord = { lesson: string; question: string; answer: string; correct: boolean | null; at: number };
export type Message = { id: number; text: string; at: number };

const SCHEMA_VERSION = 1;

/** Creates or upgrades the workshop tables; called once at start-up on the server's database. */
export function migrateWorkshops(db: DatabaseSync) {
  db.exec(`
    CREATE TABLE IF NOT EXISTS workshop_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS workshops (
      id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, title TEXT NOT NULL, lessons TEXT NOT NULL,
      starts_at INTEGER NOT NULL, ends_at INTEGER NOT NULL, capacity INTEGER NOT NULL, expected INTEGER NOT NULL,
      limits TEXT NOT NULL, nodes_per_learner INTEGER NOT NULL, stuck_minutes REAL NOT NULL,
      created_at INTEGER NOT NULL, prewarm_at INTEGER, ended_at INTEGER, end_reason TEXT
    );
    CREATE TABLE IF NOT EXISTS workshop_learners (
      id TEXT PRIMARY KEY, workshop_id TEXT NOT NULL REFERENCES workshops(id), name TEXT NOT NULL,
      name_key TEXT NOT NULL, key_hash TEXT NOT NULL, session_id TEXT, joined_at INTEGER NOT NULL,
      lesson TEXT, step TEXT, last_progress_at INTEGER, last_activity_at INTEGER NOT NULL, keepalive_at INTEGER,
      sandbox TEXT NOT NULL, seeded TEXT NOT NULL DEFAULT '[]',
      UNIQUE (workshop_id, name_key)
    );
    CREATE INDEX IF NOT EXISTS workshop_learners_session ON workshop_learners (session_id);
    CREATE TABLE IF NOT EXISTS workshop_checks (
      learner_id TEXT NOT NULL REFERENCES workshop_learners(id), lesson TEXT NOT NULL, check_id TEXT NOT NULL,
      passed INTEGER NOT NULL, verified INTEGER NOT NULL, attempts INTEGER NOT NULL,
      first_passed_at INTEGER, last_at INTEGER NOT NULL,
      PRIMARY KEY (learner_id, lesson, check_id)
    );
    CREATE TABLE IF NOT EXISTS workshop_quiz (
      learner_id TEXT NOT NULL REFERENCES workshop_learners(id), lesson TEXT NOT NULL, question TEXT NOT NULL,
      answer TEXT NOT NULL, correct INTEGER, at INTEGER NOT NULL,
      PRIMARY KEY (learner_id, lesson, question)
    );
    CREATE TABLE IF NOT EXISTS workshop_messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT, workshop_id TEXT NOT NULL REFERENCES workshops(id),
      text TEXT NOT NULL, at INTEGER NOT NULL
    );`);
  const row = db.prepare("SELECT value FROM workshop_meta WHERE key = 'schema'").get() as { value: string } | undefined;
  const found = row ? Number(row.value) : 0;
  if (found > SCHEMA_VERSION) throw new Error(`The workshop tables are from a newer Berth (schema ${found}); this server knows ${SCHEMA_VERSION}.`);
  // Later versions add their ALTERs here, each guarded by `found < N`.
  db.prepare("INSERT INTO workshop_meta (key, value) VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(SCHEMA_VERSION));
}

/** Columns of one SQLite type, for a row's schema: `{ a: type, b: type, … }`. */
const columns = <K extends string, T extends z.ZodType>(type: T, ...names: K[]) => Object.fromEntries(names.map((n) => [n, type])) as Record<K, T>;

const WorkshopRaw = z.object({
  ...columns(z.string(), 'id', 'code', 'title', 'lessons', 'limits'),
  ...columns(z.number(), 'starts_at', 'ends_at', 'capacity', 'expected', 'nodes_per_learner', 'stuck_minutes', 'created_at'),
  ...columns(z.number().nullable(), 'prewarm_at', 'ended_at'),
  end_reason: z.string().nullable(),
});
const LearnerRaw = z.object({
  ...columns(z.string(), 'id', 'workshop_id', 'name', 'name_key', 'key_hash', 'seeded'),
  ...columns(z.string().nullable(), 'session_id', 'lesson', 'step'),
  ...columns(z.number(), 'joined_at', 'last_activity_at'),
  ...columns(z.number().nullable(), 'last_progress_at', 'keepalive_at'),
  sandbox: z.enum(['joining', 'ready', 'resetting', 'gone', 'removed', 'lost']),
});

type Camel<S extends string> = S extends `${infer A}_${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
/** A row with its snake_case column names as the camelCase field names of the types above. */
function camelCase<R extends Record<string, unknown>>(row: R) {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v])) as {
    [K in keyof R as Camel<K & string>]: R[K];
  };
}

const toWorkshop = (raw: unknown): Workshop => {
  const r = camelCase(WorkshopRaw.parse(raw));
  return {
    ...r,
    lessons: z.array(z.string()).parse(JSON.parse(r.lessons)),
    limits: z.object({ memoryBytes: z.number(), nanoCpus: z.number(), pids: z.number() }).parse(JSON.parse(r.limits)),
  };
};
const toLearner = (raw: unknown): Learner => {
  const r = camelCase(LearnerRaw.parse(raw));
  return { ...r, seeded: z.array(z.string()).parse(JSON.parse(r.seeded)) };
};

/** The columns checks() and quiz() select, as SQLite gives them (booleans as 0 and 1). */
type CheckRow = { lesson: string; check_id: string; passed: number; verified: number; attempts: number; first_passed_at: number | null; last_at: number };
type QuizRow = { lesson: string; question: string; answer: string; correct: number | null; at: number };

/** Typed queries over the workshop tables. Every write is one statement, so a crash leaves no half rows. */
export class WorkshopDb {
  db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** Sets, in one statement, each column whose field `p` has (undefined: left as it is); `cols` names each field's column. */
  private update<P extends object>(table: 'workshops' | 'workshop_learners', id: string, cols: { [K in keyof P]?: string }, p: P) {
    const set = (Object.entries(cols) as [keyof P, string][]).filter(([k]) => p[k] !== undefined);
    if (!set.length) return;
    this.db.prepare(`UPDATE ${table} SET ${set.map(([, col]) => `${col} = ?`).join(', ')} WHERE id = ?`).run(...set.map(([k]) => p[k] as SQLInputValue), id);
  }

  insertWorkshop(w: Workshop) {
    this.db
      .prepare(`INSERT INTO workshops (id, code, title, lessons, starts_at, ends_at, capacity, expected, limits,
      nodes_per_learner, stuck_minutes, created_at, prewarm_at, ended_at, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(
        w.id,
        w.code,
        w.title,
        JSON.stringify(w.lessons),
        w.startsAt,
        w.endsAt,
        w.capacity,
        w.expected,
        JSON.stringify(w.limits),
        w.nodesPerLearner,
        w.stuckMinutes,
        w.createdAt,
        w.prewarmAt,
        w.endedAt,
        w.endReason,
      );
  }

  workshop(id: string): Workshop | undefined {
    const r = this.db.prepare('SELECT * FROM workshops WHERE id = ?').get(id);
    return r ? toWorkshop(r) : undefined;
  }

  byCode(code: string): Workshop | undefined {
    const r = this.db.prepare('SELECT * FROM workshops WHERE code = ?').get(code);
    return r ? toWorkshop(r) : undefined;
  }

  workshops(): Workshop[] {
    return this.db.prepare('SELECT * FROM workshops ORDER BY starts_at DESC').all().map(toWorkshop);
  }

  /** Workshops not yet ended, for the reaper and the pool target. */
  open(): Workshop[] {
    return this.db.prepare('SELECT * FROM workshops WHERE ended_at IS NULL').all().map(toWorkshop);
  }

  updateWorkshop(id: string, p: Partial<Pick<Workshop, 'title' | 'startsAt' | 'endsAt' | 'capacity' | 'expected' | 'stuckMinutes' | 'prewarmAt'>>) {
    const cols = {
      title: 'title',
      startsAt: 'starts_at',
      endsAt: 'ends_at',
      capacity: 'capacity',
      expected: 'expected',
      stuckMinutes: 'stuck_minutes',
      prewarmAt: 'prewarm_at',
    } as const;
    this.update('workshops', id, cols, p);
  }

  /** Marks the end once; false if it had ended already. */
  markEnded(id: string, at: number, reason: string): boolean {
    return this.db.prepare('UPDATE workshops SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL').run(at, reason, id).changes === 1;
  }

  insertLearner(l: Learner) {
    this.db
      .prepare(`INSERT INTO workshop_learners (id, workshop_id, name, name_key, key_hash, session_id, joined_at, lesson, step,
      last_progress_at, last_activity_at, keepalive_at, sandbox, seeded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(
        l.id,
        l.workshopId,
        l.name,
        l.nameKey,
        l.keyHash,
        l.sessionId,
        l.joinedAt,
        l.lesson,
        l.step,
        l.lastProgressAt,
        l.lastActivityAt,
        l.keepaliveAt,
        l.sandbox,
        JSON.stringify(l.seeded),
      );
  }

  deleteLearner(id: string) {
    this.db.prepare('DELETE FROM workshop_learners WHERE id = ?').run(id);
  }

  learner(id: string): Learner | undefined {
    const r = this.db.prepare('SELECT * FROM workshop_learners WHERE id = ?').get(id);
    return r ? toLearner(r) : undefined;
  }

  learnerByName(workshopId: string, nameKey: string): Learner | undefined {
    const r = this.db.prepare('SELECT * FROM workshop_learners WHERE workshop_id = ? AND name_key = ?').get(workshopId, nameKey);
    return r ? toLearner(r) : undefined;
  }

  learnerBySession(sessionId: string): Learner | undefined {
    const r = this.db.prepare('SELECT * FROM workshop_learners WHERE session_id = ?').get(sessionId);
    return r ? toLearner(r) : undefined;
  }

  learners(workshopId: string): Learner[] {
    return this.db.prepare('SELECT * FROM workshop_learners WHERE workshop_id = ? ORDER BY joined_at, name_key').all(workshopId).map(toLearner);
  }

  /** Learners holding (or about to hold) a sandbox: what the capacity counts. */
  seated(workshopId: string): number {
    const r = this.db
      .prepare("SELECT count(*) AS n FROM workshop_learners WHERE workshop_id = ? AND sandbox IN ('joining', 'ready', 'resetting', 'lost')")
      .get(workshopId) as { n: number };
    return r.n;
  }

  updateLearner(
    id: string,
    p: Partial<Pick<Learner, 'sessionId' | 'lesson' | 'step' | 'lastProgressAt' | 'lastActivityAt' | 'keepaliveAt' | 'sandbox' | 'seeded' | 'keyHash'>>,
  ) {
    const cols = {
      sessionId: 'session_id',
      lesson: 'lesson',
      step: 'step',
      lastProgressAt: 'last_progress_at',
      lastActivityAt: 'last_activity_at',
      keepaliveAt: 'keepalive_at',
      sandbox: 'sandbox',
      keyHash: 'key_hash',
    } as const;
    this.update('workshop_learners', id, cols, p);
    if (p.seeded) this.db.prepare('UPDATE workshop_learners SET seeded = ? WHERE id = ?').run(JSON.stringify(p.seeded), id);
  }

  /** Workshops that ended while some of their learners still held a sandbox (a crash or an engine error mid-end). */
  endedWithSandboxes(): Workshop[] {
    return this.db
      .prepare(`SELECT * FROM workshops w WHERE w.ended_at IS NOT NULL AND EXISTS (SELECT 1 FROM workshop_learners l
      WHERE l.workshop_id = w.id AND l.session_id IS NOT NULL AND l.sandbox IN ('joining', 'ready', 'resetting'))`)
      .all()
      .map(toWorkshop);
  }

  /** After a restart nothing is joining or resetting any more: seats that never got a sandbox are freed. */
  recoverInterrupted(sessionExists: (id: string) => boolean) {
    this.db
      .prepare(`DELETE FROM workshop_learners WHERE sandbox = 'joining' AND session_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM workshop_checks c WHERE c.learner_id = workshop_learners.id)
      AND NOT EXISTS (SELECT 1 FROM workshop_quiz q WHERE q.learner_id = workshop_learners.id)`)
      .run();
    for (const r of this.db.prepare("SELECT id, session_id FROM workshop_learners WHERE sandbox IN ('joining', 'resetting')").all() as {
      id: string;
      session_id: string | null;
    }[]) {
      this.updateLearner(r.id, { sandbox: r.session_id && sessionExists(r.session_id) ? 'ready' : 'gone' });
    }
  }

  /** Records one check result. A check once passed stays passed; `verified` means the server ran it. Returns true if newly passed. */
  recordCheck(learnerId: string, lesson: string, checkId: string, passed: boolean, verified: boolean, at: number): boolean {
    const before = this.db
      .prepare('SELECT passed, verified FROM workshop_checks WHERE learner_id = ? AND lesson = ? AND check_id = ?')
      .get(learnerId, lesson, checkId) as { passed: number; verified: number } | undefined;
    this.db
      .prepare(`INSERT INTO workshop_checks (learner_id, lesson, check_id, passed, verified, attempts, first_passed_at, last_at)
      VALUES (?, ?, ?, ?, ?, 1, ?, ?)
      ON CONFLICT (learner_id, lesson, check_id) DO UPDATE SET passed = max(passed, excluded.passed),
        verified = max(verified, excluded.verified), attempts = attempts + 1,
        first_passed_at = coalesce(first_passed_at, excluded.first_passed_at), last_at = excluded.last_at`)
      .run(learnerId, lesson, checkId, passed ? 1 : 0, passed && verified ? 1 : 0, passed ? at : null, at);
    return passed && (!before?.passed || (verified && !before.verified));
  }

  checks(learnerId: string): CheckRecord[] {
    const rows = this.db
      .prepare(
        'SELECT lesson, check_id, passed, verified, attempts, first_passed_at, last_at FROM workshop_checks WHERE learner_id = ? ORDER BY lesson, first_passed_at, check_id',
      )
      .all(learnerId) as CheckRow[];
    return rows.map((r) => ({ ...camelCase(r), passed: !!r.passed, verified: !!r.verified }));
  }

  /** Per learner of a workshop: checks passed, of them verified by the server, and quiz answers. */
  counts(workshopId: string): Map<string, { passed: number; verified: number; quiz: number }> {
    const out = new Map<string, { passed: number; verified: number; quiz: number }>();
    const get = (id: string) => out.get(id) ?? out.set(id, { passed: 0, verified: 0, quiz: 0 }).get(id)!;
    for (const r of this.db
      .prepare(`SELECT c.learner_id AS id, sum(c.passed) AS passed, sum(c.verified) AS verified FROM workshop_checks c
      JOIN workshop_learners l ON l.id = c.learner_id WHERE l.workshop_id = ? GROUP BY c.learner_id`)
      .all(workshopId) as { id: string; passed: number; verified: number }[]) {
      Object.assign(get(r.id), { passed: r.passed, verified: r.verified });
    }
    for (const r of this.db
      .prepare(`SELECT q.learner_id AS id, count(*) AS n FROM workshop_quiz q
      JOIN workshop_learners l ON l.id = q.learner_id WHERE l.workshop_id = ? GROUP BY q.learner_id`)
      .all(workshopId) as { id: string; n: number }[]) {
      get(r.id).quiz = r.n;
    }
    return out;
  }

  /** Stores a quiz answer (the latest one counts); true if it is new or changed. */
  recordQuiz(learnerId: string, lesson: string, question: string, answer: string, correct: boolean | null, at: number): boolean {
    const before = this.db.prepare('SELECT answer FROM workshop_quiz WHERE learner_id = ? AND lesson = ? AND question = ?').get(learnerId, lesson, question) as
      | { answer: string }
      | undefined;
    this.db
      .prepare(`INSERT INTO workshop_quiz (learner_id, lesson, question, answer, correct, at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (learner_id, lesson, question) DO UPDATE SET answer = excluded.answer, correct = excluded.correct, at = excluded.at`)
      .run(learnerId, lesson, question, answer, correct === null ? null : correct ? 1 : 0, at);
    return before?.answer !== answer;
  }

  quiz(learnerId: string): QuizRecord[] {
    const rows = this.db
      .prepare('SELECT lesson, question, answer, correct, at FROM workshop_quiz WHERE learner_id = ? ORDER BY lesson, question')
      .all(learnerId) as QuizRow[];
    return rows.map((r) => ({ ...r, correct: r.correct === null ? null : !!r.correct }));
  }

  addMessage(workshopId: string, text: string, at: number): Message {
    const r = this.db.prepare('INSERT INTO workshop_messages (workshop_id, text, at) VALUES (?, ?, ?)').run(workshopId, text, at);
    return { id: Number(r.lastInsertRowid), text, at };
  }

  messages(workshopId: string, after = 0): Message[] {
    return this.db.prepare('SELECT id, text, at FROM workshop_messages WHERE workshop_id = ? AND id > ? ORDER BY id').all(workshopId, after) as Message[];
  }
}

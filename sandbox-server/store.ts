// The server's memory across restarts: sessions (and later workshops) in one SQLite file.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export type SessionRow = {
  id: string;
  tokenHash: string;
  lesson: string | null;
  nodes: string[];
  createdAt: number;
  expiresAt: number;
  lastActivityAt: number;
  client: string;
};

type Raw = {
  id: string;
  token_hash: string;
  lesson: string | null;
  nodes: string;
  created_at: number;
  expires_at: number;
  last_activity_at: number;
  client: string;
};

const fromRaw = (r: Raw): SessionRow => ({
  id: r.id,
  tokenHash: r.token_hash,
  lesson: r.lesson,
  nodes: JSON.parse(r.nodes) as string[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastActivityAt: r.last_activity_at,
  client: r.client,
});

export class Store {
  db: DatabaseSync;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new DatabaseSync(file);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      -- WAL with NORMAL stays consistent after a crash and skips an fsync per commit (a power cut may lose the last ones).
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 2000;
      CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, lesson TEXT, nodes TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_activity_at INTEGER NOT NULL,
        client TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS shared_ports (
        session_id TEXT NOT NULL, node TEXT NOT NULL, port INTEGER NOT NULL, PRIMARY KEY (session_id, node, port)
      );`);
  }

  /** A random id for this state folder: it labels what this server creates, so that two servers
   * (or a test and a running Berth) on one engine never adopt or remove each other's sandboxes. */
  instanceId(): string {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'instance'").get() as { value: string } | undefined;
    if (row) return row.value;
    const id = randomBytes(8).toString('hex');
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('instance', ?)").run(id);
    return id;
  }

  /** A random secret kept across restarts (e.g. the key that signs preview tickets and cookies). */
  secret(name: string): Buffer {
    const key = `secret:${name}`;
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    if (row) return Buffer.from(row.value, 'base64');
    const value = randomBytes(32);
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, value.toString('base64'));
    return value;
  }

  setShared(sessionId: string, node: string, port: number, shared: boolean) {
    if (shared) this.db.prepare('INSERT OR IGNORE INTO shared_ports (session_id, node, port) VALUES (?, ?, ?)').run(sessionId, node, port);
    else this.db.prepare('DELETE FROM shared_ports WHERE session_id = ? AND node = ? AND port = ?').run(sessionId, node, port);
  }

  isShared(sessionId: string, node: string, port: number): boolean {
    return !!this.db.prepare('SELECT 1 FROM shared_ports WHERE session_id = ? AND node = ? AND port = ?').get(sessionId, node, port);
  }

  insertSession(s: SessionRow) {
    this.db
      .prepare(`INSERT INTO sessions (id, token_hash, lesson, nodes, created_at, expires_at, last_activity_at, client)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(s.id, s.tokenHash, s.lesson, JSON.stringify(s.nodes), s.createdAt, s.expiresAt, s.lastActivityAt, s.client);
  }

  getSession(id: string): SessionRow | undefined {
    const r = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as Raw | undefined;
    return r && fromRaw(r);
  }

  allSessions(): SessionRow[] {
    return (this.db.prepare('SELECT * FROM sessions').all() as Raw[]).map(fromRaw);
  }

  updateSession(id: string, patch: Partial<Pick<SessionRow, 'expiresAt' | 'lastActivityAt' | 'nodes'>>) {
    if (patch.expiresAt !== undefined) this.db.prepare('UPDATE sessions SET expires_at = ? WHERE id = ?').run(patch.expiresAt, id);
    if (patch.lastActivityAt !== undefined) this.db.prepare('UPDATE sessions SET last_activity_at = ? WHERE id = ?').run(patch.lastActivityAt, id);
    if (patch.nodes !== undefined) this.db.prepare('UPDATE sessions SET nodes = ? WHERE id = ?').run(JSON.stringify(patch.nodes), id);
  }

  deleteSession(id: string) {
    this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM shared_ports WHERE session_id = ?').run(id);
  }

  close() {
    this.db.close();
  }
}

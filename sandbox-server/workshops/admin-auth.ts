// Instructor credentials: admin tokens whose SHA-256 lives in the environment or in <state>/admin-tokens,
// never the token itself. There is no default: a first run with none creates one and shows it once.
// Browsers cannot put headers on EventSource or WebSocket, so an admin may trade the token for a ticket:
// single use, one workshop, one minute.
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from '../auth.ts';

export const TOKENS_FILE = 'admin-tokens';
const TICKET_MS = 60_000;

export const newAdminToken = () => `berth_admin_${randomBytes(32).toString('base64url')}`;

export const FIRST_TOKEN_FILE = 'first-admin-token';

/** Writes the first-run token where only this user can read it, and returns the file's path. */
export function writeFirstToken(stateDir: string, token: string): string {
  const file = join(stateDir, FIRST_TOKEN_FILE);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // an older file keeps its mode through writeFileSync
  return file;
}

/** Appends a new token's hash to the state folder's file and returns the token (shown once, never stored). */
export function addAdminToken(stateDir: string, label = ''): string {
  const file = join(stateDir, TOKENS_FILE);
  const token = newAdminToken();
  mkdirSync(stateDir, { recursive: true });
  if (!existsSync(file)) writeFileSync(file, '# Berth instructor tokens: SHA-256 of each token, one a line, then an optional label.\n', { mode: 0o600 });
  appendFileSync(file, `${hashToken(token)}${label ? ` ${label.replace(/\s+/g, '-')}` : ''}\n`, { mode: 0o600 });
  return token;
}

function readHashes(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]?.toLowerCase() ?? '')
    .filter((h) => /^[0-9a-f]{64}$/.test(h));
}

type Ticket = { workshopId: string; expiresAt: number };

export class AdminAuth {
  envHashes: Set<string>;
  stateDir: string;
  file: string;
  fileHashes = new Set<string>();
  fileStamp = '';
  tickets = new Map<string, Ticket>();
  now: () => number;

  constructor({ stateDir, envHashes, now = Date.now }: { stateDir: string; envHashes: string[]; now?: () => number }) {
    this.envHashes = new Set(envHashes);
    this.stateDir = stateDir;
    this.file = join(stateDir, TOKENS_FILE);
    this.now = now;
    this.reload();
  }

  /** If no token is configured anywhere, creates the first one and returns it for a single showing. */
  ensureOne(): string | null {
    if (this.envHashes.size || this.fileHashes.size) return null;
    const token = addAdminToken(this.stateDir, 'first-run');
    this.reload();
    return token;
  }

  /** The file is re-read when it changes, so an operator can add or revoke tokens without a restart. */
  reload() {
    let stamp = '';
    try {
      const s = statSync(this.file);
      stamp = `${s.mtimeMs}:${s.size}`;
    } catch {
      /* no file: no file tokens */
    }
    if (stamp === this.fileStamp) return;
    this.fileStamp = stamp;
    this.fileHashes = new Set(readHashes(this.file));
  }

  check(token: string | undefined): boolean {
    if (!token) return false;
    this.reload();
    // Comparing digests of the presented token, not the token, leaves nothing to learn from timing.
    const h = hashToken(token);
    return this.envHashes.has(h) || this.fileHashes.has(h);
  }

  issueTicket(workshopId: string) {
    const t = this.now();
    for (const [k, v] of this.tickets) if (v.expiresAt <= t) this.tickets.delete(k);
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = t + TICKET_MS;
    this.tickets.set(ticket, { workshopId, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** True once for a live ticket of this workshop; the ticket is spent either way. */
  useTicket(ticket: string | null | undefined, workshopId: string): boolean {
    if (!ticket) return false;
    const t = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return !!t && t.workshopId === workshopId && t.expiresAt > this.now();
  }
}

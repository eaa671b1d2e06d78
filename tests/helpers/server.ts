// Starts a real Berth server as a child process (real engine, own state folder) for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hashToken } from '../../sandbox-server/auth.ts';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureEngine } from '../../runtime/bootstrap/engine.ts';

const root = resolve(import.meta.dirname, '..', '..');

export type TestServer = {
  url: string;
  port: number;
  child: ChildProcess;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  logs: string[];
  api: (path: string, init?: RequestInit & { token?: string; json?: unknown }) => Promise<Response>;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
};

/** /metrics needs a token; `api('/metrics')` sends this one unless the caller gives its own. */
export const METRICS_TOKEN = randomBytes(32).toString('base64url');

export async function engineHost() {
  return (await ensureEngine()).host;
}

/** Starts `node sandbox-server/main.ts` and resolves once it listens. */
export async function startServer(extra: Record<string, string> = {}, reuseStateDir?: string): Promise<TestServer> {
  const stateDir = reuseStateDir ?? mkdtempSync(join(tmpdir(), 'berth-test-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: await engineHost(),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    BERTH_STATE_DIR: stateDir,
    BERTH_POOL_SIZE: '0',
    BERTH_CREATE_RATE_PER_MIN: '1000',
    // The suites are written against the rootless Docker provider unless the run or the test names another
    // (the Incus suites, the lessons and the site e2e on Incus in tests/run.ts).
    BERTH_PROVIDER: process.env.BERTH_PROVIDER ?? 'docker',
    BERTH_METRICS_TOKEN_SHA256: hashToken(METRICS_TOKEN),
    ...extra,
  };
  const child = spawn(process.execPath, [join(root, 'sandbox-server', 'main.ts')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${logs.join('')}`)), 60_000);
    const onLine = (b: Buffer) => {
      logs.push(b.toString());
      const m = /"port":(\d+)/.exec(b.toString());
      if (m && b.toString().includes('Berth listening')) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    };
    child.stdout!.on('data', onLine);
    child.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with ${code}:\n${logs.join('')}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    child,
    env,
    stateDir,
    logs,
    api: (path, init = {}) => {
      const headers = new Headers(init.headers);
      const token = init.token ?? (path === '/metrics' ? METRICS_TOKEN : undefined);
      if (token) headers.set('authorization', `Bearer ${token}`);
      if (init.json !== undefined) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
    },
    stop: (signal = 'SIGTERM') =>
      new Promise<void>((ok) => {
        if (child.exitCode !== null || child.signalCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill(signal);
      }),
  };
}

export type Created = { id: string; token: string; expiresAt: string; nodes: { name: string }[] };

export async function createSession(s: TestServer, body: object = {}): Promise<Created> {
  const r = await s.api('/api/sessions', { method: 'POST', json: body });
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${await r.text()}`);
  return (await r.json()) as Created;
}

/** Runs `f` on a new session, which is deleted afterwards whatever `f` did. */
export async function withSession<T>(s: TestServer, body: object, f: (c: Created) => Promise<T>): Promise<T> {
  const c = await createSession(s, body);
  try {
    return await f(c);
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
}

export async function exec(s: TestServer, c: Created, cmd: string, extra: object = {}) {
  const r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd, ...extra } });
  if (r.status !== 200) throw new Error(`exec failed: ${r.status} ${await r.text()}`);
  return (await r.json()) as { exitCode: number; stdout: string; stderr: string; durationMs: number };
}

/** The instructor token a server wrote on its first run (`<state>/first-admin-token`). */
export const firstAdminToken = (s: TestServer) => readFileSync(join(s.stateDir, 'first-admin-token'), 'utf8').trim();

export type CreatedWorkshop = { id: string; code: string };

/** A workshop made with the server's first instructor token, ending in an hour unless `body` says otherwise. */
export async function createWorkshop(s: TestServer, body: { title: string; lessons: string[]; capacity: number } & Record<string, unknown>) {
  const endsAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await s.api('/api/workshops', { method: 'POST', token: firstAdminToken(s), json: { endsAt, ...body } });
  if (r.status !== 201) throw new Error(`workshop create failed: ${r.status} ${await r.text()}`);
  return (await r.json()) as CreatedWorkshop;
}

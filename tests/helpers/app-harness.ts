// The HTTP app (createApp) built around the real session manager, store, workshop feature and rate limiters, made
// by createCore from the parsed configuration exactly as main.ts makes them, with an in-memory SQLite file, a clock
// the test moves, and FakeProvider instead of an engine. Requests go through app.request(): no socket, no root, no
// engine. What it can prove is the contract and the rules (status codes, error bodies, auth, limits, workshop
// seating); never that a sandbox works.
import type { ExecutionContext } from 'ava';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { createApp } from '../../sandbox-server/app.ts';
import { createCore } from '../../sandbox-server/core.ts';
import { hashToken } from '../../sandbox-server/auth.ts';
import { loadConfig } from '../../sandbox-server/config.ts';
import { catalogOf } from '../../sandbox-server/lesson-catalog.ts';
import { createMetrics } from '../../sandbox-server/metrics.ts';
import { Store } from '../../sandbox-server/store.ts';
import { FakeProvider } from './fake-provider.ts';
import type { SandboxProvider } from '../../sandbox-server/engine/provider.ts';
import type { Lesson } from '../../lessons/lib/index.ts';

export const ADMIN_TOKEN = 'berth_admin_unit-test-token-0123456789abcdef';
export const DEFAULT_CLIENT = '198.51.100.1';
export const METRICS_TOKEN = 'berth-unit-test-metrics-token-0123456789';

/** Two lessons with no files (nothing is read from disk) and one check each. */
// Only the fields the catalog reads are filled; the rest of the lesson type is the parser's business.
const LESSONS = ['01-demo', '02-next'].map((id) => ({
  id,
  files: [],
  steps: [{ checks: [{ id: 'c1', title: 'a file exists', node: 'node1', script: 'test -f done', fail: 'No file called done yet.' }] }],
})) as unknown as Lesson[];

export type Clock = { t: number; now: () => number; advance: (ms: number) => void };

export type RequestInit2 = Omit<RequestInit, 'body'> & { token?: string; json?: unknown; body?: string; client?: string };

/** `provider`: FakeProvider unless a test brings a real one (the Incus cluster test does). */
export function buildApp<P extends SandboxProvider = FakeProvider>(env: Record<string, string> = {}, provider: P = new FakeProvider() as unknown as P) {
  // Nothing is written to the state folder: instructor tokens come from the environment hash.
  const config = loadConfig({
    BERTH_POOL_SIZE: '0',
    // The server's default is the host's core count; the unit layer must not depend on the machine.
    BERTH_SANDBOX_CPUS: '1',
    BERTH_ADMIN_TOKEN_SHA256: hashToken(ADMIN_TOKEN),
    BERTH_STATE_DIR: joinPath(tmpdir(), 'berth-unit-no-state'),
    ...env,
  });
  const clock: Clock = {
    t: Date.now(),
    now: () => clock.t,
    advance: (ms) => {
      clock.t += ms;
    },
  };
  const logs: { level: string; msg: string; o: object }[] = [];
  const at = (level: string) => (o: object, msg: string) => {
    logs.push({ level, msg, o });
  };
  const log = { info: at('info'), warn: at('warn'), error: at('error') };

  const store = new Store(':memory:');
  const lessons = catalogOf('/nonexistent', LESSONS);
  const metrics = createMetrics();
  const { manager, preview, workshops, appDeps } = createCore({ config, provider, store, lessons, metrics, log, now: clock.now });
  const { service, capacity, auth } = workshops;
  const app = createApp({
    ...appDeps,
    sandboxFacts: { engine: 'rootless', ipvs: 'no' },
    // A test picks its client address with a header; a real server reads the socket (main.ts).
    clientAddress: (c) => c.req.header('x-test-client') ?? DEFAULT_CLIENT,
    metricsAuthorized: (token) => token === METRICS_TOKEN,
  });

  function request(path: string, init: RequestInit2 = {}) {
    const headers = new Headers(init.headers);
    if (init.token) headers.set('authorization', `Bearer ${init.token}`);
    if (init.client) headers.set('x-test-client', init.client);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return app.request(path, { ...init, headers, body });
  }

  /** A new session (201), as the site makes one. */
  async function session(body: object = {}, client?: string) {
    const r = await request('/api/sessions', { method: 'POST', json: body, client });
    if (r.status !== 201) throw new Error(`create failed: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string; token: string; expiresAt: string; nodes: { name: string }[] };
  }

  /** A workshop that is running now (an hour long unless told otherwise), created by the instructor. */
  async function workshop(body: Record<string, unknown> = {}) {
    const r = await request('/api/workshops', {
      method: 'POST',
      token: ADMIN_TOKEN,
      json: { title: 'Unit class', lessons: ['01-demo'], endsAt: new Date(clock.t + 3_600_000).toISOString(), capacity: 5, ...body },
    });
    if (r.status !== 201) throw new Error(`workshop failed: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string; code: string; state: string; joinUrl: string };
  }

  const join = (code: string, name: string, extra: object = {}, client?: string) =>
    request('/api/join', { method: 'POST', json: { code, name, ...extra }, client });

  return { app, config, clock, logs, provider, store, manager, preview, service, capacity, auth, request, session, workshop, join, close: () => store.close() };
}

export type Harness = ReturnType<typeof buildApp<FakeProvider>>;

/** Asserts Berth's error contract: the status, JSON `{error: {code, message, requestId}}`, the id echoed in the header. */
export async function assertError(t: ExecutionContext, r: Response, status: number, code: string) {
  const text = await r.text();
  t.is(r.status, status, text);
  t.regex(r.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string; requestId: string } };
  t.deepEqual(Object.keys(body), ['error']);
  t.is(body.error.code, code, body.error.message);
  t.true(typeof body.error.message === 'string' && body.error.message.length > 0);
  t.true(body.error.requestId.length > 0);
  t.is(r.headers.get('x-request-id'), body.error.requestId);
  return body.error;
}

// The API contract (sandbox-server/api.ts, sandbox-server/workshops/api.ts) against the app that serves it, through
// app.request(): the app serves exactly the contract's routes, the OpenAPI document is the contract's, and every
// route's real answers, good and bad, are what its contract declares (the JSON of its schema for that status, or
// one of its declared error codes in the API's error body).
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { sessionRoutes } from '../../sandbox-server/api.ts';
import { errorSchema, splitKey, type RouteDef } from '../../sandbox-server/contract.ts';
import { openapiDocument } from '../../sandbox-server/openapi.ts';
import { tabAndSize } from '../../sandbox-server/terminal/endpoint.ts';
import { workshopRoutes } from '../../sandbox-server/workshops/api.ts';
import { machineRoutes } from '../../sandbox-server/machines/api.ts';
import { ADMIN_TOKEN, buildApp, type Harness, type RequestInit2 } from '../helpers/app-harness.ts';

const ROUTES: Record<string, RouteDef> = { ...sessionRoutes, ...workshopRoutes, ...machineRoutes };
const MOUNTED = Object.keys(ROUTES).filter((k) => !ROUTES[k].upgrade);

test("the app serves exactly the contract's routes (the WebSocket upgrades are served beside it)", (t) => {
  const h = buildApp();
  const served = new Set(h.app.routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*')).map((r) => `${r.method} ${r.path}`));
  h.close();
  t.true(served.size > 40, `found ${served.size} routes`);
  t.deepEqual(
    [...served].filter((r) => !(r in ROUTES)),
    [],
    'served but in no contract',
  );
  t.deepEqual(
    MOUNTED.filter((k) => !served.has(k)),
    [],
    'in a contract but not served',
  );
});

test('a pattern with flags cannot enter the document: zod would write its source and drop the flags', (t) => {
  const route = (pattern: RegExp) => ({
    'POST /x': { summary: 'x', auth: 'none' as const, body: z.strictObject({ code: z.string().regex(pattern) }), responses: { 204: null }, errors: {} },
  });
  // Without the guard, /^ab$/i would be documented as "^ab$": a client reading the document would refuse "AB".
  t.throws(() => openapiDocument([route(/^ab$/i)]), { message: /\/\^ab\$\/i at properties\.code has flags/ });
  t.throws(() => openapiDocument([route(/^ab$/g)]), { message: /has flags/ });
  const doc = openapiDocument([route(/^a\p{L}$/u)]);
  t.like(doc.paths['/x'].post as object, { requestBody: { content: { 'application/json': { schema: { properties: { code: { pattern: '^a\\p{L}$' } } } } } } });
});

test("the OpenAPI document is made from the contract: limits included (nodes at most 10, the terminal's cols and rows)", async (t) => {
  const h = buildApp();
  const doc = (await (await h.request('/api/openapi.json')).json()) as ReturnType<typeof openapiDocument>;
  h.close();
  t.deepEqual(doc, JSON.parse(JSON.stringify(openapiDocument([sessionRoutes, workshopRoutes, machineRoutes]))));
  for (const key of Object.keys(ROUTES)) {
    const { method, path } = splitKey(key);
    t.truthy(doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()], key);
  }
  const create = doc.paths['/api/sessions'].post as { requestBody: { content: { 'application/json': { schema: { properties: Record<string, object> } } } } };
  t.like(create.requestBody.content['application/json'].schema.properties.nodes, { type: 'integer', minimum: 1, maximum: 10 });
  const terminal = doc.paths['/api/sessions/{id}/terminal'].get as { parameters: { name: string; schema: object }[] };
  t.like(terminal.parameters.find((p) => p.name === 'cols')?.schema, { maximum: 1000 });
  t.like(terminal.parameters.find((p) => p.name === 'rows')?.schema, { maximum: 500 });
});

/** Asserts that a response is one the route declares, and returns its JSON body (if any). */
async function conforms(t: ExecutionContext, key: string, r: Response): Promise<unknown> {
  const route = ROUTES[key];
  const status = r.status;
  const reply = route.responses[status];
  if (reply !== undefined) {
    if (reply === null) {
      t.is(await r.text(), '', `${key} ${status} has no body`);
      return undefined;
    }
    if ('media' in reply) {
      t.true((r.headers.get('content-type') ?? '').startsWith(reply.media), `${key} ${status} is ${reply.media}`);
      await r.body?.cancel();
      return undefined;
    }
    const body = await r.json();
    const p = (reply as z.ZodType).safeParse(body);
    t.true(p.success, `${key} ${status} does not match its schema: ${p.error?.message}\n${JSON.stringify(body)}`);
    return body;
  }
  const text = await r.text();
  const e = errorSchema.safeParse(JSON.parse(text));
  t.true(e.success, `${key} ${status} is not the API's error body: ${text}`);
  const code = e.data?.error.code ?? '';
  t.true(
    status === 500 || (route.errors[status as 400]?.includes(code as 'INTERNAL') ?? false),
    `${key} answered ${status} ${code}, which its contract does not declare: ${text}`,
  );
  return undefined;
}

type Ctx = { h: Harness; s: { id: string; token: string }; w: { id: string; code: string }; learner: string; learnerSession: { id: string; token: string } };
type Call = { path: string; init?: RequestInit2; status: number };
/** A request with the instructor's token. */
const asAdmin = (path: string, status: number, init: RequestInit2 = {}): Call => ({ path, init: { token: ADMIN_TOKEN, ...init }, status });

/** One good request per route, made in the order listed (a workshop learner joins before their rows are read). */
const GOOD: Record<string, (x: Ctx) => Call> = {
  'GET /healthz': () => ({ path: '/healthz', status: 200 }),
  'GET /metrics': () => ({ path: '/metrics', init: { token: 'berth-unit-test-metrics-token-0123456789' }, status: 200 }),
  'GET /api/openapi.json': () => ({ path: '/api/openapi.json', status: 200 }),
  'GET /api/sandbox-facts': () => ({ path: '/api/sandbox-facts', status: 200 }),
  'POST /api/sessions': () => ({ path: '/api/sessions', init: { method: 'POST', json: { lesson: '01-demo', nodes: 1 } }, status: 201 }),
  'POST /api/lessons/:lesson/quizzes/:quiz/answer': () => ({
    path: '/api/lessons/01-demo/quizzes/q1/answer',
    init: { method: 'POST', json: { answer: [0] } },
    status: 404,
  }),
  'GET /api/sessions/:id': ({ s }) => ({ path: `/api/sessions/${s.id}`, init: { token: s.token }, status: 200 }),
  'POST /api/sessions/:id/extend': ({ s }) => ({ path: `/api/sessions/${s.id}/extend`, init: { method: 'POST', token: s.token }, status: 200 }),
  'POST /api/sessions/:id/exec': ({ s }) => ({
    path: `/api/sessions/${s.id}/exec`,
    init: { method: 'POST', token: s.token, json: { cmd: 'true', node: 'node1', timeoutMs: 1000 } },
    status: 200,
  }),
  'POST /api/sessions/:id/checks/:checkId': ({ s }) => ({
    path: `/api/sessions/${s.id}/checks/c1`,
    init: { method: 'POST', token: s.token, json: { lesson: '01-demo' } },
    status: 200,
  }),
  'GET /api/sessions/:id/replay': ({ s }) => ({ path: `/api/sessions/${s.id}/replay`, init: { token: s.token }, status: 404 }),
  'POST /api/sessions/:id/replay': ({ s }) => ({
    path: `/api/sessions/${s.id}/replay`,
    init: { method: 'POST', token: s.token, json: { lesson: '01-demo', step: 'nope' } },
    status: 404,
  }),
  'GET /api/sessions/:id/lessons/:lesson/steps/:step/reference': ({ s }) => ({
    path: `/api/sessions/${s.id}/lessons/01-demo/steps/nope/reference`,
    init: { token: s.token },
    status: 404,
  }),
  'POST /api/sessions/:id/nodes': ({ s }) => ({ path: `/api/sessions/${s.id}/nodes`, init: { method: 'POST', token: s.token }, status: 201 }),
  'DELETE /api/sessions/:id/nodes/:node': ({ s }) => ({ path: `/api/sessions/${s.id}/nodes/node2`, init: { method: 'DELETE', token: s.token }, status: 204 }),
  'GET /api/sessions/:id/files': ({ s }) => ({ path: `/api/sessions/${s.id}/files?path=`, init: { token: s.token }, status: 200 }),
  'PUT /api/sessions/:id/files': ({ s }) => ({
    path: `/api/sessions/${s.id}/files?path=a.txt`,
    init: { method: 'PUT', token: s.token, json: { content: 'hi' } },
    status: 200,
  }),
  'POST /api/sessions/:id/files': ({ s }) => ({
    path: `/api/sessions/${s.id}/files?path=dir`,
    init: { method: 'POST', token: s.token, json: { type: 'dir' } },
    status: 201,
  }),
  'DELETE /api/sessions/:id/files': ({ s }) => ({ path: `/api/sessions/${s.id}/files?path=dir`, init: { method: 'DELETE', token: s.token }, status: 204 }),
  // FakeProvider cannot stream: the route says so with its declared 404.
  'GET /api/sessions/:id/archive': ({ s }) => ({ path: `/api/sessions/${s.id}/archive`, init: { token: s.token }, status: 404 }),
  'GET /api/sessions/:id/ports': ({ s }) => ({ path: `/api/sessions/${s.id}/ports`, init: { token: s.token }, status: 200 }),
  'GET /api/sessions/:id/events': ({ s }) => ({ path: `/api/sessions/${s.id}/events`, init: { token: s.token }, status: 200 }),
  'POST /api/sessions/:id/ports/:node/:port/share': ({ s }) => ({
    path: `/api/sessions/${s.id}/ports/node1/8080/share`,
    init: { method: 'POST', token: s.token, json: { shared: true } },
    status: 200,
  }),
  'POST /api/workshops': () => ({
    path: '/api/workshops',
    init: {
      method: 'POST',
      token: ADMIN_TOKEN,
      json: {
        title: 'Another',
        lessons: ['01-demo'],
        endsAt: new Date(Date.now() + 7_200_000).toISOString(),
        capacity: 2,
        limits: { memory: '512m', cpus: 1, pids: 256 },
      },
    },
    status: 201,
  }),
  'GET /api/workshops': () => ({ path: '/api/workshops', init: { token: ADMIN_TOKEN }, status: 200 }),
  'GET /api/join/:code': ({ w }) => ({ path: `/api/join/${w.code}`, status: 200 }),
  'POST /api/join': ({ w }) => ({ path: '/api/join', init: { method: 'POST', json: { code: w.code, name: 'Second learner' } }, status: 201 }),
  'GET /api/workshops/:id': ({ w }) => ({ path: `/api/workshops/${w.id}`, init: { token: ADMIN_TOKEN }, status: 200 }),
  'PATCH /api/workshops/:id': ({ w }) => ({
    path: `/api/workshops/${w.id}`,
    init: { method: 'PATCH', token: ADMIN_TOKEN, json: { title: 'Renamed', stuckMinutes: 5 } },
    status: 200,
  }),
  'GET /api/workshops/:id/capacity': ({ w }) => ({ path: `/api/workshops/${w.id}/capacity`, init: { token: ADMIN_TOKEN }, status: 200 }),
  'POST /api/workshops/:id/prewarm': ({ w }) => ({
    path: `/api/workshops/${w.id}/prewarm`,
    init: { method: 'POST', token: ADMIN_TOKEN, json: { expectedLearners: 1 } },
    status: 200,
  }),
  'POST /api/workshops/:id/tickets': ({ w }) => ({ path: `/api/workshops/${w.id}/tickets`, init: { method: 'POST', token: ADMIN_TOKEN }, status: 201 }),
  'POST /api/workshops/:id/messages': ({ w }) => ({
    path: `/api/workshops/${w.id}/messages`,
    init: { method: 'POST', token: ADMIN_TOKEN, json: { text: 'Hello' } },
    status: 201,
  }),
  'GET /api/workshops/:id/messages': ({ w }) => ({ path: `/api/workshops/${w.id}/messages?after=0`, init: { token: ADMIN_TOKEN }, status: 200 }),
  'POST /api/sessions/:id/progress': ({ learnerSession: l }) => ({
    path: `/api/sessions/${l.id}/progress`,
    init: { method: 'POST', token: l.token, json: { lesson: '01-demo', checksPassed: ['c1'], quiz: [{ id: 'q1', answer: '0' }] } },
    status: 200,
  }),
  'GET /api/sessions/:id/workshop': ({ learnerSession: l }) => ({ path: `/api/sessions/${l.id}/workshop?after=0`, init: { token: l.token }, status: 200 }),
  'GET /api/workshops/:id/learners/:learner': ({ w, learner }) => asAdmin(`/api/workshops/${w.id}/learners/${learner}`, 200),
  'GET /api/workshops/:id/learners/:learner/tabs': ({ w, learner }) => asAdmin(`/api/workshops/${w.id}/learners/${learner}/tabs`, 200),
  'POST /api/workshops/:id/learners/:learner/reset': ({ w, learner }) => asAdmin(`/api/workshops/${w.id}/learners/${learner}/reset`, 200, { method: 'POST' }),
  'POST /api/sessions/:id/workshop/reset': ({ learnerSession: l }) => ({
    path: `/api/sessions/${l.id}/workshop/reset`,
    init: { method: 'POST', token: l.token },
    status: 200,
  }),
  'GET /api/workshops/:id/learners/:learner/replay': ({ w, learner }) => asAdmin(`/api/workshops/${w.id}/learners/${learner}/replay`, 404),
  'POST /api/workshops/:id/learners/:learner/replay': ({ w, learner }) =>
    asAdmin(`/api/workshops/${w.id}/learners/${learner}/replay`, 404, { method: 'POST', json: { lesson: '01-demo', step: 'nope', fresh: false } }),
  'GET /api/workshops/:id/results.csv': ({ w }) => ({ path: `/api/workshops/${w.id}/results.csv`, init: { token: ADMIN_TOKEN }, status: 200 }),
  'GET /api/workshops/:id/events': ({ w }) => ({ path: `/api/workshops/${w.id}/events`, init: { token: ADMIN_TOKEN }, status: 200 }),
  'POST /api/workshops/:id/end': ({ w }) => ({ path: `/api/workshops/${w.id}/end`, init: { method: 'POST', token: ADMIN_TOKEN }, status: 200 }),
  // FakeProvider stands in for a cluster of two machines (each test's harness calls cluster()).
  'GET /api/machines': () => asAdmin('/api/machines', 200),
  'POST /api/machines/:name/drain': () => asAdmin('/api/machines/m2/drain', 200, { method: 'POST', json: { minutes: 30 } }),
  'DELETE /api/machines/:name/drain': () => asAdmin('/api/machines/m2/drain', 200, { method: 'DELETE' }),
  'DELETE /api/sessions/:id': ({ s }) => ({ path: `/api/sessions/${s.id}`, init: { method: 'DELETE', token: s.token }, status: 204 }),
};

/** What the fake nodes answer: a folder listing, a written path, a published port, an open tab. */
function answers(h: Harness) {
  h.provider.cluster('m1', 'm2');
  h.provider.answer = ({ cmd }) => {
    if (cmd.includes('echo D;')) return { stdout: '/home/learner\nD\nf\t2\t1700000000.5\ta.txt\0d\t4096\t1700000000\tdir\0' };
    if (cmd.includes('docker ps')) return { stdout: 'abc\tnginx:alpine\tweb\t0.0.0.0:8080->80/tcp\n' };
    if (cmd.includes('.berth-tab-')) return { stdout: '1\n' };
    if (cmd.includes('printf \'%s\\n\' "$p"')) return { stdout: '/home/learner/dir\n' };
    return {};
  };
}

test("every route's real answers are the ones its contract declares", async (t) => {
  // A state folder that exists: the capacity route reads its free disk.
  const state = mkdtempSync(join(tmpdir(), 'berth-contract-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const h = buildApp({ BERTH_STATE_DIR: state });
  answers(h);
  // A sample of an idle engine, so the capacity route answers from it instead of starting a probe.
  h.capacity.sample = { at: Date.now(), source: 'probe', nodes: 1, idleMemoryBytes: 40 * 1024 ** 2, idleDiskBytes: null };
  // Nodes on other machines (a remote Incus): the capacity answer then lists each.
  Object.assign(h.provider, { machines: async () => [{ name: 'm1', cpus: 4, memoryTotal: 8 * 1024 ** 3, memoryAvailable: 6 * 1024 ** 3, diskFree: null }] });
  const s = await h.session({ lesson: '01-demo' });
  const w = await h.workshop();
  const j = await h.join(w.code, 'Ada');
  t.is(j.status, 201);
  const joined = (await j.json()) as { learner: { id: string }; session: { id: string; token: string } };
  const x: Ctx = { h, s, w, learner: joined.learner.id, learnerSession: joined.session };
  t.deepEqual(
    MOUNTED.filter((k) => !(k in GOOD)),
    [],
    'routes with no request in this walk',
  );
  for (const [key, make] of Object.entries(GOOD)) {
    const call = make(x);
    const r = await h.request(call.path, call.init);
    t.is(r.status, call.status, `${key}: ${r.status}`);
    await conforms(t, key, r);
  }
  h.close();
});

test('bad input to every route gets one of its declared JSON errors', async (t) => {
  const h = buildApp();
  answers(h);
  const s = await h.session();
  const w = await h.workshop();
  const j = (await (await h.join(w.code, 'Ada')).json()) as { learner: { id: string }; session: { id: string; token: string } };
  const x: Ctx = { h, s, w, learner: j.learner.id, learnerSession: j.session };
  let checked = 0;
  for (const key of MOUNTED) {
    const route = ROUTES[key];
    const good = GOOD[key](x);
    const { method } = splitKey(key);
    const tries: [string, RequestInit2, number][] = [];
    // A body the schema cannot take (an unknown field; every body schema is strict), and one that is not JSON.
    if (route.body) {
      tries.push(['unknown field', { ...good.init, method, json: { ...(good.init?.json as object), surplus: 1 } }, 400]);
      tries.push(['not JSON', { ...good.init, method, json: undefined, body: '{', headers: { 'content-type': 'application/json' } }, 400]);
    }
    if (route.maxBody !== undefined) tries.push(['too large', { ...good.init, method, json: undefined, body: 'x'.repeat(route.maxBody + 1) }, 413]);
    // No credential at all.
    if (route.auth !== 'none') tries.push(['no token', { ...good.init, token: undefined }, 401]);
    if (route.auth === 'session') tries.push(['an unknown session', { ...good.init }, 404]);
    for (const [what, init, status] of tries) {
      const path = what === 'an unknown session' ? good.path.replace(/\/api\/sessions\/[a-z0-9]+/, '/api/sessions/zzzzzzzzzzzz') : good.path;
      const r = await h.request(path, init);
      t.is(r.status, status, `${key} with ${what}`);
      await conforms(t, key, r);
      checked++;
    }
  }
  t.true(checked > 80, `${checked} bad requests`);
  h.close();
});

test("the terminal reads its tab and size with the contract's schema: the documented bounds are the enforced ones", (t) => {
  const closed: number[] = [];
  const ws = {
    send: () => {},
    close: (code: number) => {
      closed.push(code);
    },
  } as unknown as WebSocket;
  const size = (q: string) => tabAndSize(ws, new URL(`http://berth.invalid/api/sessions/x/terminal?${q}`));
  t.deepEqual(size(''), { tab: '1', cols: 80, rows: 24 });
  t.deepEqual(size('tab=a-1&cols=1000&rows=500'), { tab: 'a-1', cols: 1000, rows: 500 });
  t.deepEqual(closed, []);
  for (const bad of ['cols=1001', 'rows=501', 'cols=0', 'rows=2.5', 'cols=', 'tab=', 'tab=a_b']) t.is(size(bad), null, bad);
  t.is(closed.length, 7);
  const query = sessionRoutes['GET /api/sessions/:id/terminal'].query;
  t.false(query.safeParse({ cols: '1001' }).success);
  t.true(query.safeParse({ cols: '1000', rows: '500' }).success);
});

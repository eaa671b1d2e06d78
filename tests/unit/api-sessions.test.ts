// The session API's contract through app.request(): validation, auth, rate limits, capacity and node rules.
// No engine: FakeProvider stands in where the engine's work is not what is tested (tests/helpers/app-harness.ts).
import test from 'ava';
import { assertError, buildApp, DEFAULT_CLIENT, METRICS_TOKEN } from '../helpers/app-harness.ts';
import { heldGate } from '../helpers/fake-provider.ts';

test('a session: 201 with an id, a 256-bit token, an expiry and its nodes', async (t) => {
  const h = buildApp();
  const r = await h.request('/api/sessions', { method: 'POST', json: { nodes: 2 } });
  t.is(r.status, 201);
  const body = (await r.json()) as { id: string; token: string; expiresAt: string; nodes: { name: string }[] };
  t.deepEqual(Object.keys(body).sort(), ['expiresAt', 'id', 'nodes', 'token']);
  t.is(Buffer.from(body.token, 'base64url').length, 32);
  t.is(Date.parse(body.expiresAt), h.clock.t + h.config.lifetimeMs);
  t.deepEqual(body.nodes, [{ name: 'node1' }, { name: 'node2' }]);
  t.deepEqual(h.provider.sandboxes.get(body.id)?.nodes, ['node1', 'node2']);
  t.false(JSON.stringify(h.store.getSession(body.id)).includes(body.token), 'only the token hash is stored');
});

test('create: bodies that are not the schema are 400 VALIDATION_FAILED naming the field, before any engine work', async (t) => {
  const h = buildApp();
  const post = (body: string) => h.request('/api/sessions', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  t.regex((await assertError(t, await post('{"nodes":'), 400, 'VALIDATION_FAILED')).message, /not valid JSON/);
  t.regex((await assertError(t, await post('{"nodez":1}'), 400, 'VALIDATION_FAILED')).message, /nodez/);
  for (const nodes of [0, 11, 1.5, '2', null]) {
    t.regex((await assertError(t, await post(JSON.stringify({ nodes })), 400, 'VALIDATION_FAILED')).message, /^nodes: /, String(nodes));
  }
  t.regex((await assertError(t, await post('{"lesson":"../etc"}'), 400, 'VALIDATION_FAILED')).message, /^lesson: /);
  // Within the schema's 10 but above this server's BERTH_MAX_NODES (5).
  t.regex((await assertError(t, await post('{"nodes":6}'), 400, 'VALIDATION_FAILED')).message, /at most 5 nodes/);
  await assertError(t, await post('{"lesson":"99-missing"}'), 404, 'LESSON_NOT_FOUND');
  t.is(h.provider.created, 0);
});

test('create: a body over 16 KiB is 413 and the connection is not reused', async (t) => {
  const h = buildApp();
  const r = await h.request('/api/sessions', { method: 'POST', json: { lesson: 'x'.repeat(17 * 1024) } });
  t.is(r.headers.get('connection'), 'close');
  await assertError(t, r, 413, 'BODY_TOO_LARGE');
});

test('rate limit: BERTH_CREATE_RATE_PER_MIN per client address per minute, failed attempts included', async (t) => {
  const h = buildApp({ BERTH_CREATE_RATE_PER_MIN: '3' });
  const create = (json: object, client = DEFAULT_CLIENT) => h.request('/api/sessions', { method: 'POST', json, client });
  // A missing lesson fails after the rate check: guessing costs attempts like anything else.
  t.deepEqual([(await create({ lesson: 'zz-missing' })).status, (await create({})).status, (await create({})).status], [404, 201, 201]);
  await assertError(t, await create({}), 429, 'RATE_LIMITED');
  t.is((await create({}, '203.0.113.9')).status, 201, 'another address has its own window');
  h.clock.advance(59_999);
  await assertError(t, await create({}), 429, 'RATE_LIMITED');
  h.clock.advance(1);
  t.is((await create({})).status, 201, 'a new minute, a new window');
  t.is(h.provider.created, 4);
});

test('capacity: BERTH_MAX_SANDBOXES counts sessions and creations in flight; concurrent creates never overshoot', async (t) => {
  const h = buildApp({ BERTH_MAX_SANDBOXES: '2' });
  const gate = heldGate();
  h.provider.gate = gate.promise;
  const pending = Array.from({ length: 5 }, () => h.request('/api/sessions', { method: 'POST', json: {} }));
  // Let every request reach the manager before any creation finishes.
  await new Promise((r) => setImmediate(r));
  gate.release();
  const statuses = await Promise.all(pending.map(async (p) => (await p).status));
  t.deepEqual(statuses.toSorted(), [201, 201, 503, 503, 503]);
  const refused = await Promise.all(pending.map(async (p) => (await p).clone()));
  await assertError(t, refused.find((r) => r.status === 503)!, 503, 'OUT_OF_CAPACITY');
  t.is(h.provider.sandboxes.size, 2);
  // A deleted session frees its place.
  const s = h.store.allSessions()[0];
  t.is(h.manager.count(), 2);
  await h.manager.remove(s.id);
  t.is((await h.request('/api/sessions', { method: 'POST', json: {} })).status, 201);
});

test("auth: session routes need the session's own token", async (t) => {
  const h = buildApp();
  const a = await h.session();
  const b = await h.session();
  const path = `/api/sessions/${a.id}`;
  await assertError(t, await h.request(path), 401, 'UNAUTHORIZED');
  await assertError(t, await h.request(path, { headers: { authorization: `Basic ${a.token}` } }), 401, 'UNAUTHORIZED');
  // A wrong token answers exactly like an unknown session: no oracle for which sessions exist.
  const unknown = await assertError(t, await h.request('/api/sessions/nosuchsession', { token: a.token }), 404, 'SESSION_NOT_FOUND');
  for (const token of [b.token, `${a.token.slice(0, -2)}xx`]) {
    t.is((await assertError(t, await h.request(path, { token }), 404, 'SESSION_NOT_FOUND')).message, unknown.message);
  }
  for (const sub of ['', '/exec', '/files', '/ports', '/nodes', '/extend']) {
    const r = await h.request(`${path}${sub}`, {
      method: sub === '/exec' || sub === '/extend' || sub === '/nodes' ? 'POST' : 'GET',
      token: b.token,
      json: sub === '/exec' ? { cmd: 'id' } : undefined,
    });
    await assertError(t, r, 404, 'SESSION_NOT_FOUND');
  }
  t.is(h.provider.runs.length, 0, 'no command ran for a refused request');
  const ok = await h.request(path, { token: a.token });
  t.is(ok.status, 200);
  t.is(((await ok.json()) as { id: string }).id, a.id);
});

test('lifetime: an idle or expired session is 404 SESSION_NOT_FOUND; extend pushes the end out, never past one lifetime', async (t) => {
  const h = buildApp({ BERTH_IDLE_TIMEOUT_MIN: '30', BERTH_SESSION_LIFETIME_MIN: '60', BERTH_SESSION_EXTEND_MIN: '45' });
  const s = await h.session();
  h.clock.advance(20 * 60_000);
  const r = await h.request(`/api/sessions/${s.id}/extend`, { method: 'POST', token: s.token });
  t.is(r.status, 200);
  const { expiresAt } = (await r.json()) as { expiresAt: string };
  // 60 + 45 would be 105 minutes after creation; one lifetime from now (20 + 60) is the cap.
  t.is(Date.parse(expiresAt), h.clock.t + 60 * 60_000);
  h.clock.advance(30 * 60_000);
  await assertError(t, await h.request(`/api/sessions/${s.id}`, { token: s.token }), 404, 'SESSION_NOT_FOUND');
  await h.manager.reap();
  t.is(h.provider.sandboxes.size, 0, 'the reaper removed the idle sandbox');
});

test('the absolute lifetime cap and the node operations per minute hold here as in main.ts (one createCore builds both)', async (t) => {
  const h = buildApp({ BERTH_SESSION_LIFETIME_MIN: '60', BERTH_SESSION_EXTEND_MIN: '45', BERTH_SESSION_MAX_LIFETIME_MIN: '70', BERTH_NODE_OPS_PER_MIN: '2' });
  const s = await h.session();
  const created = h.clock.t;
  h.clock.advance(20 * 60_000);
  const r = await h.request(`/api/sessions/${s.id}/extend`, { method: 'POST', token: s.token });
  // 60 + 45 and one lifetime from now (80) are both past the absolute cap: 70 minutes after creation.
  t.is(Date.parse(((await r.json()) as { expiresAt: string }).expiresAt), created + 70 * 60_000);
  for (const status of [201, 201]) t.is((await h.request(`/api/sessions/${s.id}/nodes`, { method: 'POST', token: s.token })).status, status);
  await assertError(t, await h.request(`/api/sessions/${s.id}/nodes`, { method: 'POST', token: s.token }), 429, 'RATE_LIMITED');
});

test('delete: 204, then the session is gone and its sandbox removed', async (t) => {
  const h = buildApp();
  const s = await h.session();
  const r = await h.request(`/api/sessions/${s.id}`, { method: 'DELETE', token: s.token });
  t.is(r.status, 204);
  t.is(h.provider.sandboxes.size, 0);
  await assertError(t, await h.request(`/api/sessions/${s.id}`, { token: s.token }), 404, 'SESSION_NOT_FOUND');
});

test('exec: body rules, node names, defaults handed to the engine', async (t) => {
  const h = buildApp();
  const s = await h.session();
  const exec = (json: unknown) => h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', token: s.token, json });
  for (const bad of [
    {},
    { cmd: '' },
    { cmd: 'id', timeoutMs: 50 },
    { cmd: 'id', timeoutMs: 600_001 },
    { cmd: 'id', shell: 'zsh' },
    { cmd: 'x'.repeat(64 * 1024 + 1) },
  ]) {
    await assertError(t, await exec(bad), 400, 'VALIDATION_FAILED');
  }
  await assertError(t, await exec({ cmd: 'id', node: 'node2' }), 404, 'NODE_NOT_FOUND');
  t.is(h.provider.runs.length, 0);
  h.provider.answer = () => ({ exitCode: 3, stdout: 'out', stderr: 'err' });
  const r = await exec({ cmd: 'id' });
  t.is(r.status, 200);
  t.like(await r.json(), { exitCode: 3, stdout: 'out', stderr: 'err', truncated: false });
  t.like(h.provider.runs[0], { node: 'node1', cmd: 'id', opts: { timeoutMs: 30_000, maxOutput: h.config.execMaxOutput } });
});

test("checks: the exit code decides, the lesson's own messages answer, unknown ids are 404", async (t) => {
  const h = buildApp();
  const s = await h.session({ lesson: '01-demo' });
  const check = (id: string, lesson = '01-demo') => h.request(`/api/sessions/${s.id}/checks/${id}`, { method: 'POST', token: s.token, json: { lesson } });
  h.provider.answer = () => ({ exitCode: 1, stdout: 'a\nb\nc\nd\ne\nf\n' });
  t.deepEqual(await (await check('c1')).json(), { id: 'c1', passed: false, message: 'No file called done yet.', detail: 'b\nc\nd\ne\nf' });
  t.is(h.provider.runs.at(-1)!.cmd, 'test -f done');
  h.provider.answer = () => ({ exitCode: 0 });
  t.deepEqual(await (await check('c1')).json(), { id: 'c1', passed: true, message: 'Passed.' });
  await assertError(t, await check('nope'), 404, 'CHECK_NOT_FOUND');
  await assertError(t, await check('c1', '99-missing'), 404, 'LESSON_NOT_FOUND');
});

test('nodes: added up to BERTH_MAX_NODES with distinct names under concurrency; the last node stays', async (t) => {
  const h = buildApp({ BERTH_MAX_NODES: '3' });
  const s = await h.session();
  const add = () => h.request(`/api/sessions/${s.id}/nodes`, { method: 'POST', token: s.token });
  const results = await Promise.all([add(), add(), add()]);
  t.deepEqual(results.map((r) => r.status).toSorted(), [201, 201, 409]);
  const names = await Promise.all(results.filter((r) => r.status === 201).map(async (r) => ((await r.json()) as { name: string }).name));
  t.deepEqual(names.toSorted(), ['node2', 'node3']);
  t.deepEqual(h.store.getSession(s.id)!.nodes, ['node1', 'node2', 'node3']);
  const del = (n: string) => h.request(`/api/sessions/${s.id}/nodes/${n}`, { method: 'DELETE', token: s.token });
  t.is((await del('node2')).status, 204);
  t.is((await del('node3')).status, 204);
  await assertError(t, await del('node1'), 409, 'CONFLICT');
  await assertError(t, await del('node7'), 404, 'NODE_NOT_FOUND');
});

test('files and ports: query and path parameters are checked before the engine is asked', async (t) => {
  const h = buildApp();
  const s = await h.session();
  const base = `/api/sessions/${s.id}`;
  await assertError(t, await h.request(`${base}/files?path=${'a'.repeat(4097)}`, { token: s.token }), 400, 'VALIDATION_FAILED');
  await assertError(t, await h.request(`${base}/files?node=node4`, { token: s.token }), 404, 'NODE_NOT_FOUND');
  await assertError(t, await h.request(`${base}/files`, { method: 'PUT', token: s.token, json: { content: 'x', encoding: 'hex' } }), 400, 'VALIDATION_FAILED');
  for (const port of ['0', '65536', 'http']) {
    await assertError(
      t,
      await h.request(`${base}/ports/node1/${port}/share`, { method: 'POST', token: s.token, json: { shared: true } }),
      400,
      'VALIDATION_FAILED',
    );
  }
  await assertError(
    t,
    await h.request(`${base}/ports/node1/8080/share`, { method: 'POST', token: s.token, json: { shared: 'yes' } }),
    400,
    'VALIDATION_FAILED',
  );
  t.is(h.provider.runs.length, 0);
  const r = await h.request(`${base}/ports/node1/8080/share`, { method: 'POST', token: s.token, json: { shared: true } });
  t.is(r.status, 200);
  t.true(((await r.json()) as { shared: boolean }).shared);
  t.true(h.store.isShared(s.id, 'node1', 8080));
});

test('unknown routes, health, OpenAPI and metrics', async (t) => {
  const h = buildApp();
  await assertError(t, await h.request('/api/nope'), 404, 'NOT_FOUND');
  await assertError(t, await h.request('/api/sessions', { method: 'GET' }), 404, 'NOT_FOUND');
  t.deepEqual(await (await h.request('/healthz')).json(), { ok: true });
  const spec = (await (await h.request('/api/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
  t.regex(spec.openapi, /^3\./);
  t.truthy(spec.paths['/api/sessions']);
  await h.request('/api/sessions', { method: 'POST', body: '{' });
  await assertError(t, await h.request('/metrics'), 401, 'UNAUTHORIZED');
  const metrics = await (await h.request('/metrics', { token: METRICS_TOKEN })).text();
  t.regex(metrics, /berth_errors_total\{code="VALIDATION_FAILED"\} 1/);
  t.regex(metrics, /berth_sandboxes\{state="session"\} 0/);
});

test('sandbox facts are public: the site shows lesson notes by them before any session exists', async (t) => {
  const r = await buildApp().request('/api/sandbox-facts');
  t.is(r.status, 200);
  t.deepEqual(await r.json(), { engine: 'rootless', ipvs: 'no' });
});

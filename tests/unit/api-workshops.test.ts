// Workshop rules through app.request(): instructor auth, join codes, doors, capacity, names, concurrent joins,
// returning learners, stuck detection, broadcasts and the end. No engine (tests/helpers/app-harness.ts); what
// joining costs on a real engine is measured in tests/integration/workshops.test.ts.
import test from 'ava';
import { ADMIN_TOKEN, assertError, buildApp, type Harness } from '../helpers/app-harness.ts';
import { heldGate } from '../helpers/fake-provider.ts';

type Joined = {
  learner: { id: string; name: string; key: string };
  workshop: { id: string; state: string };
  session: { id: string; token: string; expiresAt: string };
};
type Row = { id: string; name: string; stuck: boolean; sandbox: string; checksVerified: number; step: string | null };

const iso = (h: Harness, ms: number) => new Date(h.clock.t + ms).toISOString();
const rows = async (h: Harness, id: string) =>
  ((await (await h.request(`/api/workshops/${id}`, { token: ADMIN_TOKEN })).json()) as { learnerRows: Row[] }).learnerRows;

test("instructor routes need an admin token: none, a wrong one and a learner's session token are 401", async (t) => {
  const h = buildApp();
  const s = await h.session();
  for (const token of [undefined, 'berth_admin_not-the-right-token-at-all', s.token]) {
    await assertError(t, await h.request('/api/workshops', { token }), 401, 'UNAUTHORIZED');
    await assertError(t, await h.request('/api/workshops', { method: 'POST', token, json: {} }), 401, 'UNAUTHORIZED');
  }
  const r = await h.request('/api/workshops', { token: ADMIN_TOKEN });
  t.deepEqual(await r.json(), { workshops: [] });
});

test('create: 201 with a six-letter code from an alphabet without look-alikes, and a join URL', async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  t.regex(w.code, /^[A-HJKMNP-Z2-9]{6}$/);
  t.is(w.joinUrl, `http://localhost/join/?code=${w.code}`);
  t.is(w.state, 'running');
});

test('create: invalid workshops are refused with the field named', async (t) => {
  const h = buildApp();
  const create = (json: object) =>
    h.request('/api/workshops', {
      method: 'POST',
      token: ADMIN_TOKEN,
      json: { title: 'T', lessons: ['01-demo'], endsAt: iso(h, 3_600_000), capacity: 5, ...json },
    });
  const cases: [object, RegExp][] = [
    [{ endsAt: iso(h, -1000) }, /endsAt/],
    [{ startsAt: iso(h, 7_200_000) }, /endsAt/],
    [{ endsAt: 'tomorrow' }, /^endsAt: /],
    [{ capacity: 0 }, /^capacity: /],
    [{ capacity: 1001 }, /^capacity: /],
    [{ lessons: [] }, /^lessons: /],
    [{ title: '   ' }, /^title: /],
    [{ colour: 'red' }, /colour/],
    [{ limits: { memory: '4g' } }, /limits\.memory: above/],
    [{ limits: { memory: '128m' } }, /limits\.memory: at least 256m/],
    [{ limits: { cpus: 2, pids: 99_999 } }, /limits\.cpus, limits\.pids/],
    [{ nodesPerLearner: 6 }, /at most 5/],
  ];
  for (const [json, message] of cases) {
    t.regex((await assertError(t, await create(json), 400, 'VALIDATION_FAILED')).message, message, JSON.stringify(json));
  }
  await assertError(t, await create({ lessons: ['01-demo', '99-missing'] }), 404, 'LESSON_NOT_FOUND');
  t.deepEqual(h.service.db.workshops(), []);
});

test('join codes: typed loosely; a wrong one is 404; an address that keeps guessing is stopped', async (t) => {
  const h = buildApp({ BERTH_JOIN_FAILURES_PER_MIN: '3' });
  const w = await h.workshop({ capacity: 4 });
  const loose = `${w.code.slice(0, 3).toLowerCase()}-${w.code.slice(3)} `;
  const preview = await h.request(`/api/join/${encodeURIComponent(loose)}`);
  t.like(await preview.json(), { id: w.id, title: 'Unit class', seatsLeft: 4, state: 'running' });
  t.is((await h.join(loose, 'Ada')).status, 201);
  const wrong = w.code.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
  for (let i = 0; i < 3; i++) await assertError(t, await h.join(wrong, `guess${i}`), 404, 'JOIN_CODE_INVALID');
  // Three wrong codes: the right code from that address is refused too, for the rest of the minute.
  await assertError(t, await h.join(w.code, 'Grace'), 429, 'RATE_LIMITED');
  await assertError(t, await h.request(`/api/join/${w.code}`), 429, 'RATE_LIMITED');
  t.is((await h.join(w.code, 'Grace', {}, '203.0.113.7')).status, 201, 'other addresses are not affected');
  // A body that is not the schema costs no attempt but is refused.
  await assertError(t, await h.join(w.code, '', {}, '203.0.113.8'), 400, 'VALIDATION_FAILED');
  await assertError(t, await h.join(w.code, '<script>', {}, '203.0.113.8'), 400, 'VALIDATION_FAILED');
});

test('doors: joining opens 30 minutes before the start and closes at the end (410)', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ startsAt: iso(h, 3_600_000), endsAt: iso(h, 7_200_000) });
  t.is(w.state, 'scheduled');
  await assertError(t, await h.join(w.code, 'Early'), 409, 'WORKSHOP_NOT_OPEN');
  h.clock.advance(30 * 60_000);
  const r = await h.join(w.code, 'Early');
  t.is(r.status, 201);
  const j = (await r.json()) as Joined;
  t.is(j.workshop.state, 'open');
  t.is(j.session.expiresAt, iso(h, 90 * 60_000), 'the session lasts exactly as long as the workshop');
  h.clock.advance(90 * 60_000);
  await assertError(t, await h.join(w.code, 'Late'), 410, 'WORKSHOP_ENDED');
});

test('capacity: the seat count is enforced and shown; concurrent joins never overfill', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ capacity: 3 });
  const gate = heldGate();
  h.provider.gate = gate.promise;
  const pending = Array.from({ length: 8 }, (_, i) => h.join(w.code, `Learner ${i}`));
  await new Promise((r) => setImmediate(r));
  gate.release();
  const results = await Promise.all(pending);
  t.deepEqual(results.map((r) => r.status).toSorted(), [201, 201, 201, 409, 409, 409, 409, 409]);
  await assertError(t, results.find((r) => r.status === 409)!, 409, 'WORKSHOP_FULL');
  t.is(h.store.allSessions().length, 3);
  t.is(h.service.db.seated(w.id), 3);
  t.like(await (await h.request(`/api/join/${w.code}`)).json(), { seatsLeft: 0 });
});

test('names: one per workshop, compared without case, spacing or width; concurrent joins with one name seat one', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ capacity: 10 });
  t.is((await h.join(w.code, 'Ada Lovelace')).status, 201);
  for (const name of ['ada lovelace', '  Ada   Lovelace ', 'ＡＤＡ LOVELACE']) {
    await assertError(t, await h.join(w.code, name), 409, 'NAME_TAKEN');
  }
  const gate = heldGate();
  h.provider.gate = gate.promise;
  const pending = Array.from({ length: 5 }, () => h.join(w.code, 'Grace'));
  await new Promise((r) => setImmediate(r));
  gate.release();
  const statuses = await Promise.all(pending.map(async (p) => (await p).status));
  t.deepEqual(statuses.toSorted(), [201, 409, 409, 409, 409]);
  t.is(h.service.db.seated(w.id), 2);
});

test('a join that fails gives its seat and name back', async (t) => {
  const h = buildApp();
  // No expected learners: no warm pool for this class, so the join's own creation is the one that fails.
  const w = await h.workshop({ capacity: 1, expectedLearners: 0 });
  h.provider.failNext = new Error('engine fell over');
  await assertError(t, await h.join(w.code, 'Ada'), 500, 'INTERNAL');
  t.is(h.service.db.seated(w.id), 0);
  t.is(h.logs.filter((l) => l.level === 'error').length, 1, 'the cause is logged for the operator');
  t.is((await h.join(w.code, 'Ada')).status, 201);
});

test('a workshop with its own limits needs a provider that can apply them: 503, and the seat is given back', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ capacity: 1, expectedLearners: 0, limits: { memory: '512m' } });
  await assertError(t, await h.join(w.code, 'Ada'), 503, 'SANDBOX_FAILED');
  t.is(h.service.db.seated(w.id), 0);
  t.is(h.provider.sandboxes.size, 0, 'the sandbox made for the join was removed');
});

test("returning learner: the same name with the browser's key gets a new sandbox once the old one is gone", async (t) => {
  const h = buildApp();
  const w = await h.workshop({ capacity: 1 });
  const first = (await (await h.join(w.code, 'Ada')).json()) as Joined;
  await assertError(t, await h.join(w.code, 'Ada', { key: first.learner.key }), 409, 'NAME_TAKEN');
  t.is((await h.request(`/api/sessions/${first.session.id}`, { method: 'DELETE', token: first.session.token })).status, 204);
  await h.service.tick();
  t.is((await rows(h, w.id))[0].sandbox, 'gone');
  await assertError(t, await h.join(w.code, 'Ada'), 409, 'NAME_TAKEN');
  await assertError(t, await h.join(w.code, 'Ada', { key: 'not-the-key' }), 409, 'NAME_TAKEN');
  const again = await h.join(w.code, 'Ada', { key: first.learner.key });
  t.is(again.status, 201);
  const second = (await again.json()) as Joined;
  t.is(second.learner.id, first.learner.id);
  t.not(second.session.id, first.session.id);
  t.not(second.learner.key, first.learner.key, 'the key changes with each join');
  t.is(h.service.db.seated(w.id), 1);
});

test('stuck: a ready learner without progress for stuckMinutes while the workshop runs; progress clears it', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ stuckMinutes: 10 });
  const j = (await (await h.join(w.code, 'Ada')).json()) as Joined;
  h.clock.advance(10 * 60_000 - 1);
  t.false((await rows(h, w.id))[0].stuck);
  h.clock.advance(1);
  t.true((await rows(h, w.id))[0].stuck);
  const p = await h.request(`/api/sessions/${j.session.id}/progress`, { method: 'POST', token: j.session.token, json: { lesson: '01-demo', step: 'two' } });
  t.like(await p.json(), { recorded: true });
  t.like((await rows(h, w.id))[0], { stuck: false, step: 'two' });
  // Reporting the same step again is not progress.
  h.clock.advance(9 * 60_000);
  await h.request(`/api/sessions/${j.session.id}/progress`, { method: 'POST', token: j.session.token, json: { lesson: '01-demo', step: 'two' } });
  h.clock.advance(60_000);
  t.true((await rows(h, w.id))[0].stuck);
});

test('stuck: nobody is stuck before the start, and the clock counts from the start', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ startsAt: iso(h, 20 * 60_000), endsAt: iso(h, 3_600_000), stuckMinutes: 5 });
  t.is((await h.join(w.code, 'Early')).status, 201);
  h.clock.advance(19 * 60_000);
  t.false((await rows(h, w.id))[0].stuck, 'not running yet');
  h.clock.advance(5 * 60_000);
  t.false((await rows(h, w.id))[0].stuck, 'four minutes into the workshop');
  h.clock.advance(60_000);
  t.true((await rows(h, w.id))[0].stuck);
});

test('server-run checks count as verified for a workshop learner; a session outside a workshop records nothing', async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const j = (await (await h.join(w.code, 'Ada')).json()) as Joined;
  h.provider.answer = () => ({ exitCode: 0 });
  const r = await h.request(`/api/sessions/${j.session.id}/checks/c1`, { method: 'POST', token: j.session.token, json: { lesson: '01-demo' } });
  t.like(await r.json(), { passed: true });
  t.is((await rows(h, w.id))[0].checksVerified, 1);
  const s = await h.session();
  const p = await h.request(`/api/sessions/${s.id}/progress`, { method: 'POST', token: s.token, json: { lesson: '01-demo' } });
  t.deepEqual(await p.json(), { recorded: false, messages: [] });
  await assertError(t, await h.request(`/api/sessions/${s.id}/workshop`, { token: s.token }), 404, 'NOT_IN_WORKSHOP');
  await assertError(
    t,
    await h.request(`/api/sessions/${j.session.id}/progress`, { method: 'POST', token: j.session.token, json: { lesson: '99-missing' } }),
    404,
    'LESSON_NOT_FOUND',
  );
});

test('broadcasts: learners read messages after a cursor; none after the end', async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const j = (await (await h.join(w.code, 'Ada')).json()) as Joined;
  const send = (text: string) => h.request(`/api/workshops/${w.id}/messages`, { method: 'POST', token: ADMIN_TOKEN, json: { text } });
  const m1 = (await (await send('Take a break')).json()) as { id: number };
  await send('Back at 11');
  const read = async (after: number) =>
    (
      (await (await h.request(`/api/sessions/${j.session.id}/workshop?after=${after}`, { token: j.session.token })).json()) as { messages: { text: string }[] }
    ).messages.map((m) => m.text);
  t.deepEqual(await read(0), ['Take a break', 'Back at 11']);
  t.deepEqual(await read(m1.id), ['Back at 11']);
  await assertError(t, await send('   '), 400, 'VALIDATION_FAILED');
  t.is((await h.request(`/api/workshops/${w.id}/end`, { method: 'POST', token: ADMIN_TOKEN })).status, 200);
  await assertError(t, await send('anyone?'), 409, 'WORKSHOP_ENDED');
});

test('the end removes every learner sandbox and keeps the results; an ended workshop cannot change', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ expectedLearners: 0 });
  for (const name of ['Ada', 'Grace', 'Linus']) t.is((await h.join(w.code, name)).status, 201);
  t.is(h.provider.sandboxes.size, 3);
  const r = await h.request(`/api/workshops/${w.id}/end`, { method: 'POST', token: ADMIN_TOKEN });
  t.like(await r.json(), { state: 'ended', endReason: 'instructor' });
  t.is(h.provider.sandboxes.size, 0);
  t.deepEqual(
    (await rows(h, w.id)).map((x) => x.sandbox),
    ['removed', 'removed', 'removed'],
  );
  await assertError(t, await h.request(`/api/workshops/${w.id}`, { method: 'PATCH', token: ADMIN_TOKEN, json: { capacity: 9 } }), 409, 'WORKSHOP_ENDED');
  const csv = await (await h.request(`/api/workshops/${w.id}/results.csv`, { token: ADMIN_TOKEN })).text();
  t.is(csv.trim().split('\n').length, 4, 'a header and three learners');
});

test('the clock ends a workshop at endsAt (tick), as the instructor would', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ endsAt: iso(h, 60_000), expectedLearners: 0 });
  t.is((await h.join(w.code, 'Ada')).status, 201);
  h.clock.advance(60_000);
  await h.service.tick();
  t.is(h.provider.sandboxes.size, 0);
  t.like(await (await h.request(`/api/workshops/${w.id}`, { token: ADMIN_TOKEN })).json(), { state: 'ended', endReason: 'time' });
});

test("tickets stand in for the admin header once, on one workshop's downloads and events only", async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const other = await h.workshop();
  const ticket = async () =>
    ((await (await h.request(`/api/workshops/${w.id}/tickets`, { method: 'POST', token: ADMIN_TOKEN })).json()) as { ticket: string }).ticket;
  const a = await ticket();
  t.is((await h.request(`/api/workshops/${w.id}/results.csv?ticket=${a}`)).status, 200);
  await assertError(t, await h.request(`/api/workshops/${w.id}/results.csv?ticket=${a}`), 401, 'UNAUTHORIZED');
  const b = await ticket();
  await assertError(t, await h.request(`/api/workshops/${other.id}/results.csv?ticket=${b}`), 401, 'UNAUTHORIZED');
  const c = await ticket();
  await assertError(t, await h.request(`/api/workshops/${w.id}?ticket=${c}`), 401, 'UNAUTHORIZED');
  const d = await ticket();
  h.clock.advance(60_000);
  await assertError(t, await h.request(`/api/workshops/${w.id}/results.csv?ticket=${d}`), 401, 'UNAUTHORIZED');
});

test('PATCH: capacity and end time change; sessions follow the new end; expected learners never exceed capacity', async (t) => {
  const h = buildApp();
  const w = await h.workshop({ capacity: 5, expectedLearners: 5 });
  const j = (await (await h.join(w.code, 'Ada')).json()) as Joined;
  const endsAt = iso(h, 2 * 3_600_000);
  const r = await h.request(`/api/workshops/${w.id}`, { method: 'PATCH', token: ADMIN_TOKEN, json: { capacity: 2, endsAt } });
  t.like(await r.json(), { capacity: 2, expectedLearners: 2, endsAt });
  t.is(h.store.getSession(j.session.id)!.expiresAt, Date.parse(endsAt));
  await assertError(
    t,
    await h.request(`/api/workshops/${w.id}`, { method: 'PATCH', token: ADMIN_TOKEN, json: { endsAt: iso(h, -1) } }),
    400,
    'VALIDATION_FAILED',
  );
  await assertError(t, await h.request('/api/workshops/nosuchworkshop', { token: ADMIN_TOKEN }), 404, 'WORKSHOP_NOT_FOUND');
});

// A session whose machine went away (issue 18: an Incus cluster member lost), through app.request() with
// FakeProvider standing in for the cluster: the provider names the lost sandboxes, the manager marks them,
// every route of such a session answers 503 MACHINE_LOST, workshops show the learner as lost and let them
// rejoin, and sessions elsewhere are untouched. The real cluster is tests/integration/incus-cluster.test.ts.
import test from 'ava';
import { ADMIN_TOKEN, assertError, buildApp, METRICS_TOKEN } from '../helpers/app-harness.ts';
import { streamText } from '../helpers/event-stream.ts';
import { KEEPALIVE_MS } from '../../sandbox-server/sandboxes/session-feed.ts';

test('a lost session: every route answers 503 MACHINE_LOST with a message saying what to do; DELETE still works', async (t) => {
  const h = buildApp();
  const lost = await h.session();
  const kept = await h.session();
  t.is(await h.manager.findLost(), 0);
  h.provider.lostOn.set(lost.id, 'm2');
  t.is(await h.manager.findLost(), 1);
  t.is(await h.manager.findLost(), 0, 'counted once');
  t.is(h.manager.lostMember(lost.id), 'm2');
  for (const [path, init] of [
    [`/api/sessions/${lost.id}`, {}],
    [`/api/sessions/${lost.id}/exec`, { method: 'POST', json: { cmd: 'true' } }],
    [`/api/sessions/${lost.id}/files?path=`, {}],
    [`/api/sessions/${lost.id}/ports`, {}],
    [`/api/sessions/${lost.id}/archive`, {}],
    [`/api/sessions/${lost.id}/nodes`, { method: 'POST' }],
    [`/api/sessions/${lost.id}/extend`, { method: 'POST' }],
  ] as const) {
    const e = await assertError(t, await h.request(path, { ...init, token: lost.token }), 503, 'MACHINE_LOST');
    t.regex(e.message, /machine running this sandbox went away.*Start a new sandbox/);
  }
  // A wrong token learns nothing about it: the same 404 as for any session.
  await assertError(t, await h.request(`/api/sessions/${lost.id}`, { token: kept.token }), 404, 'SESSION_NOT_FOUND');
  // The other session goes on.
  t.is((await h.request(`/api/sessions/${kept.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: kept.token })).status, 200);
  // A lost session holds no room; the metrics count it.
  t.is(h.manager.count(), 1);
  t.regex(await (await h.request('/metrics', { token: METRICS_TOKEN })).text(), /berth_sandboxes\{state="lost"\} 1/);

  // Deleting it: the row goes at once; its machine is away, so its sandbox is removed when it answers again.
  t.is((await h.request(`/api/sessions/${lost.id}`, { method: 'DELETE', token: lost.token })).status, 204);
  await assertError(t, await h.request(`/api/sessions/${lost.id}`, { token: lost.token }), 404, 'SESSION_NOT_FOUND');
  t.true(h.provider.sandboxes.has(lost.id));
  await h.manager.reap();
  t.true(h.provider.sandboxes.has(lost.id), 'still away');
  h.provider.lostOn.delete(lost.id);
  await h.manager.reap();
  t.false(h.provider.sandboxes.has(lost.id), 'removed once its machine answered');
});

test('a failing call on a session whose machine is found lost answers MACHINE_LOST at once, before the watch runs', async (t) => {
  const h = buildApp();
  const s = await h.session();
  const neighbour = await h.session();
  h.provider.lostOn.set(s.id, 'm2');
  h.provider.lostOn.set(neighbour.id, 'm2');
  const e = await assertError(t, await h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: s.token }), 503, 'MACHINE_LOST');
  t.regex(e.message, /went away/);
  t.is(h.manager.lostMember(s.id), 'm2');
  t.is(h.manager.lostMember(neighbour.id), 'm2', 'the other session on that machine is marked at the same time');
  // A failure on a machine that is there stays the engine's error.
  const other = await h.session();
  h.provider.answer = () => {
    throw new Error('engine hiccup');
  };
  const r = await h.request(`/api/sessions/${other.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: other.token });
  t.not(r.status, 503);
  t.is(h.manager.lostMember(other.id), undefined);
});

test('a machine not answering but not declared lost yet: 503 ENGINE_UNAVAILABLE saying so, the session not marked', async (t) => {
  const h = buildApp();
  const s = await h.session();
  h.provider.silentOn.set(s.id, 'm2');
  const e = await assertError(
    t,
    await h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: s.token }),
    503,
    'ENGINE_UNAVAILABLE',
  );
  t.regex(e.message, /machine running this sandbox is not answering.*within a minute/);
  t.is(h.manager.lostMember(s.id), undefined);
  h.provider.silentOn.delete(s.id);
  t.is((await h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: s.token })).status, 200, 'back');
});

test('after a restart, a sandbox on a machine away is adopted (not removed) and marked by findLost, an expired one left for later removal', async (t) => {
  const h = buildApp();
  const live = await h.session();
  const old = await h.session();
  h.store.updateSession(old.id, { expiresAt: h.clock.t - 1 });
  h.provider.lostOn.set(live.id, 'm2');
  h.provider.lostOn.set(old.id, 'm2');
  await h.manager.recover();
  t.truthy(h.store.getSession(live.id));
  t.is(h.manager.lostMember(live.id), undefined, 'not answering is not lost yet');
  await h.manager.findLost();
  t.is(h.manager.lostMember(live.id), 'm2');
  t.falsy(h.store.getSession(old.id));
  t.true(h.provider.sandboxes.has(old.id));
  h.provider.lostOn.delete(old.id);
  await h.manager.reap();
  t.false(h.provider.sandboxes.has(old.id));
});

test('workshops: the instructor sees the learner as lost through the feed; the learner rejoins with their key for a new sandbox', async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const a = (await (await h.join(w.code, 'Ada')).json()) as { learner: { id: string; key: string }; session: { id: string; token: string } };
  const b = (await (await h.join(w.code, 'Grace')).json()) as { learner: { id: string }; session: { id: string } };
  const rows: { name: string; sandbox: string }[] = [];
  const off = h.service.subscribe(w.id, (e) => {
    if (e.type === 'learner') rows.push(e.data as { name: string; sandbox: string });
  });
  h.provider.lostOn.set(a.session.id, 'm2');
  await h.manager.findLost();
  await h.service.tick();
  off();
  t.deepEqual(
    rows.map((r) => `${r.name} ${r.sandbox}`),
    ['Ada lost'],
  );
  const full = (await (await h.request(`/api/workshops/${w.id}`, { token: ADMIN_TOKEN })).json()) as { learnerRows: { name: string; sandbox: string }[] };
  t.deepEqual(full.learnerRows.map((r) => `${r.name} ${r.sandbox}`).sort(), ['Ada lost', 'Grace ready']);
  // The instructor cannot reset a lost sandbox: the learner rejoins.
  await assertError(t, await h.request(`/api/workshops/${w.id}/learners/${a.learner.id}/reset`, { method: 'POST', token: ADMIN_TOKEN }), 409, 'NO_SANDBOX');
  const again = await h.join(w.code, 'Ada', { key: a.learner.key });
  t.is(again.status, 201, await again.clone().text());
  const j = (await again.json()) as { learner: { id: string }; session: { id: string } };
  t.is(j.learner.id, a.learner.id, 'the same learner, their results kept');
  t.not(j.session.id, a.session.id);
  t.falsy(h.store.getSession(a.session.id), 'the lost session is gone');
  const after = (await (await h.request(`/api/workshops/${w.id}`, { token: ADMIN_TOKEN })).json()) as { learnerRows: { name: string; sandbox: string }[] };
  t.deepEqual(after.learnerRows.map((r) => `${r.name} ${r.sandbox}`).sort(), ['Ada ready', 'Grace ready']);
  t.truthy(b.session.id);
});

test("the learner's event stream says `gone` as soon as the session is found lost, not at its next keep-alive", async (t) => {
  const h = buildApp();
  const s = await h.session();
  const ac = new AbortController();
  const r = await h.request(`/api/sessions/${s.id}/events`, { token: s.token, signal: ac.signal });
  t.is(r.status, 200);
  const feed = streamText(r);
  const until = async (re: RegExp) => (await feed.until(re)) !== null;
  t.true(await until(/event: hello/));
  h.provider.lostOn.set(s.id, 'm2');
  const t0 = performance.now();
  await h.manager.findLost();
  t.true(await until(/event: gone/));
  // Not by the keep-alive pass, which would also say `gone` but only KEEPALIVE_MS after the last event.
  t.true(performance.now() - t0 < KEEPALIVE_MS / 2, `${performance.now() - t0} ms`);
  ac.abort();
  await feed.cancel();
});

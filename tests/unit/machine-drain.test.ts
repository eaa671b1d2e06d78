// Planned maintenance (issue 18): an operator drains a machine of the cluster. Through app.request() with
// FakeProvider standing in for an Incus cluster of two members (its drain marks are the members' `user.berth.drain`
// keys; its placement leaves a draining member out, as Berth's placement group does): the operator's routes, the
// manager's rules (a session not in use ends at once, one in use is kept until the deadline, each then answers
// 503 MACHINE_MAINTENANCE), the learner's warning (session view and events), the warm pool, and the instructor's rows.
import test from 'ava';
import { DRAIN_IDLE_MS } from '../../sandbox-server/sandboxes/manager.ts';
import { ADMIN_TOKEN, assertError, buildApp, type Harness } from '../helpers/app-harness.ts';
import { streamText } from '../helpers/event-stream.ts';
import { eventually } from '../helpers/wait.ts';

type MachineJson = { name: string; status: string; sessions: number; drain: { deadline: string; started: string; drained: boolean } | null };

/** A harness whose provider is a cluster of m1 and m2, its clock past the start-up grace (nothing counts as used yet). */
function cluster(env: Record<string, string> = {}) {
  const h = buildApp(env);
  h.provider.cluster('m1', 'm2');
  h.clock.advance(DRAIN_IDLE_MS + 1000);
  return h;
}

const drain = (h: Harness, name: string, minutes: unknown, token = ADMIN_TOKEN) =>
  h.request(`/api/machines/${name}/drain`, { method: 'POST', token, json: { minutes } });
const machines = async (h: Harness) => {
  const r = await h.request('/api/machines', { token: ADMIN_TOKEN });
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  return new Map(((await r.json()) as { machines: MachineJson[] }).machines.map((m) => [m.name, m]));
};
const sessionOn = async (h: Harness, member: string) => {
  for (;;) {
    const s = await h.session();
    if (h.provider.placed.get(s.id) === member) return s;
  }
};
/** The session as its learner reads it (GET /api/sessions/:id), or the status it was refused with. */
const status = async (h: Harness, s: { id: string; token: string }) => {
  const r = await h.request(`/api/sessions/${s.id}`, { token: s.token });
  if (r.status !== 200) throw new Error(`GET session: ${r.status} ${await r.text()}`);
  return (await r.json()) as { id: string; maintenanceAt?: string };
};

test('the machine routes: admin token only; bad minutes and names are 400; an unknown machine 404; one machine (no cluster) 501', async (t) => {
  const single = buildApp();
  for (const [path, method] of [
    ['/api/machines', 'GET'],
    ['/api/machines/m1/drain', 'POST'],
    ['/api/machines/m1/drain', 'DELETE'],
  ] as const) {
    const json = method === 'POST' ? { minutes: 10 } : undefined;
    const e = await assertError(t, await single.request(path, { method, token: ADMIN_TOKEN, json }), 501, 'NO_MACHINES');
    t.regex(e.message, /one machine.*Incus cluster/);
    await assertError(t, await single.request(path, { method, json }), 401, 'UNAUTHORIZED');
  }

  const h = cluster();
  const learner = await h.session();
  await assertError(t, await drain(h, 'm2', 10, learner.token), 401, 'UNAUTHORIZED');
  await assertError(t, await h.request('/api/machines', { token: learner.token }), 401, 'UNAUTHORIZED');
  for (const bad of [0, 1441, 1.5, '10', null]) await assertError(t, await drain(h, 'm2', bad), 400, 'VALIDATION_FAILED');
  await assertError(t, await h.request('/api/machines/m2/drain', { method: 'POST', token: ADMIN_TOKEN, json: {} }), 400, 'VALIDATION_FAILED');
  await assertError(t, await drain(h, '-m2', 10), 400, 'VALIDATION_FAILED');
  await assertError(t, await drain(h, 'm3', 10), 404, 'MACHINE_NOT_FOUND');
  await assertError(t, await h.request('/api/machines/m3/drain', { method: 'DELETE', token: ADMIN_TOKEN }), 404, 'MACHINE_NOT_FOUND');
  t.is(h.provider.members?.get('m2')?.drain, null, 'nothing was marked');

  const list = await machines(h);
  t.deepEqual([...list.keys()], ['m1', 'm2']);
  t.is(list.get('m1')!.sessions + list.get('m2')!.sessions, 1);
  t.is(list.get(h.provider.placed.get(learner.id)!)!.sessions, 1);
  t.is(list.get('m1')!.drain, null);
});

test('a drain ends an unused session at once and keeps a used one until the deadline; each then answers 503 MACHINE_MAINTENANCE', async (t) => {
  const h = cluster();
  const idle = await sessionOn(h, 'm2');
  const typing = await sessionOn(h, 'm2');
  const watching = await sessionOn(h, 'm2');
  const elsewhere = await sessionOn(h, 'm1');
  h.clock.advance(DRAIN_IDLE_MS + 1000);
  // One learner ran a command a minute ago; another has a terminal open but has not typed for long.
  h.clock.advance(-60_000);
  t.is((await h.request(`/api/sessions/${typing.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: typing.token })).status, 200);
  h.clock.advance(60_000);
  const closeTerminal = h.manager.terminalOpened(watching.id);

  const t0 = h.clock.t;
  const r = await drain(h, 'm2', 10);
  t.is(r.status, 200, await r.clone().text());
  const m2 = (await r.json()) as MachineJson;
  const deadline = new Date(t0 + 10 * 60_000).toISOString();
  t.deepEqual(m2, { name: 'm2', status: 'Online', sessions: 2, drain: { deadline, started: new Date(t0).toISOString(), drained: false } });
  t.deepEqual(h.provider.members?.get('m2')?.drain, { deadline: t0 + 10 * 60_000, started: t0 }, 'the mark is on the machine (Incus: its member config)');

  // The unused session ended: its sandbox is gone, its learner is told why and what to do.
  t.false(h.provider.sandboxes.has(idle.id));
  const e = await assertError(t, await h.request(`/api/sessions/${idle.id}`, { token: idle.token }), 503, 'MACHINE_MAINTENANCE');
  t.regex(e.message, /taken down for planned maintenance.*Start a new sandbox/);
  await assertError(
    t,
    await h.request(`/api/sessions/${idle.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: idle.token }),
    503,
    'MACHINE_MAINTENANCE',
  );
  // The used ones carry the deadline; the session elsewhere does not.
  t.is((await status(h, typing)).maintenanceAt, deadline);
  t.is((await status(h, watching)).maintenanceAt, deadline);
  t.false('maintenanceAt' in (await status(h, elsewhere)));

  // No new session is placed on the draining machine.
  for (let i = 0; i < 4; i++) t.is(h.provider.placed.get((await h.session()).id), 'm1');

  // Two minutes after its last command the first is unused: ended at the next pass; the open terminal keeps the other.
  h.clock.advance(DRAIN_IDLE_MS);
  t.is(await h.manager.drainTick(), 1);
  await assertError(t, await h.request(`/api/sessions/${typing.id}`, { token: typing.token }), 503, 'MACHINE_MAINTENANCE');
  t.is((await machines(h)).get('m2')!.sessions, 1);
  t.false(h.logs.some((l) => /drained/.test(l.msg)));

  // At the deadline every session left there ends, terminal open or not.
  h.clock.advance(8 * 60_000);
  t.is(await h.manager.drainTick(), 1);
  await assertError(t, await h.request(`/api/sessions/${watching.id}`, { token: watching.token }), 503, 'MACHINE_MAINTENANCE');
  closeTerminal();
  const after = (await machines(h)).get('m2')!;
  t.is(after.sessions, 0);
  t.true(after.drain?.drained);
  t.is(h.logs.filter((l) => /machine m2 is drained.*incus cluster evacuate m2/.test(l.msg)).length, 1, 'said once');
  t.is((await h.request(`/api/sessions/${elsewhere.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: elsewhere.token })).status, 200);

  // Ended sessions hold no room and are counted apart from lost ones; their learners can still delete them.
  t.like(h.manager.counts(), { lost: 0, maintenance: 3 });
  t.is((await h.request(`/api/sessions/${idle.id}`, { method: 'DELETE', token: idle.token })).status, 204);
  await assertError(t, await h.request(`/api/sessions/${idle.id}`, { token: idle.token }), 404, 'SESSION_NOT_FOUND');
});

test('cancelling a drain: sessions still there are kept and told, new sessions may go there again', async (t) => {
  const h = cluster();
  const s = await sessionOn(h, 'm2');
  h.manager.touch(s.id);
  const ac = new AbortController();
  const r = await h.request(`/api/sessions/${s.id}/events`, { token: s.token, signal: ac.signal });
  const feed = streamText(r);
  const until = async (re: RegExp) => feed.until(re);
  t.truthy(await until(/event: hello/));
  // Placement hears when the machines being drained change (main.ts moves Incus's placement group at once).
  let changes = 0;
  h.manager.listen((e) => {
    if (e === 'drains') changes++;
  });
  t.is((await drain(h, 'm2', 20)).status, 200);
  t.is((await drain(h, 'm2', 25)).status, 200, 'a new deadline');
  t.is(changes, 1, 'a new deadline is no change of machines');
  const at = new Date(h.clock.t + 25 * 60_000).toISOString();
  t.truthy(await until(new RegExp(`event: maintenance\\ndata: \\{"at":"${at}"\\}`)), 'the learner is warned with the deadline');
  t.is((await status(h, s)).maintenanceAt, at);

  const c = await h.request('/api/machines/m2/drain', { method: 'DELETE', token: ADMIN_TOKEN });
  t.is(c.status, 200);
  t.like(await c.json(), { name: 'm2', sessions: 1, drain: null });
  t.is(h.provider.members?.get('m2')?.drain, null);
  t.truthy(await until(/event: maintenance\ndata: \{"at":null\}/), 'and told when it is off');
  t.is(changes, 2);
  t.false('maintenanceAt' in (await status(h, s)));
  // Past the old deadline, nothing ends; the machine takes new sessions again.
  h.clock.advance(25 * 60_000);
  h.manager.touch(s.id);
  t.is(await h.manager.drainTick(), 0);
  t.is((await h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: s.token })).status, 200);
  const placed = new Set<string>();
  for (let i = 0; i < 4; i++) placed.add(h.provider.placed.get((await h.session()).id)!);
  t.true(placed.has('m2'));
  ac.abort();
  await feed.cancel();
});

test('warm sandboxes on a draining machine are removed, never handed out; the pool refills elsewhere', async (t) => {
  const h = cluster({ BERTH_POOL_SIZE: '2' });
  h.manager.startPool();
  await eventually(() => (h.manager.poolStatus().ready === 2 ? true : undefined), { what: 'two warm sandboxes' });
  const [a, b] = h.manager.readyPoolIds(2);
  t.deepEqual(new Set([h.provider.placed.get(a), h.provider.placed.get(b)]), new Set(['m1', 'm2']));
  const onM2 = h.provider.placed.get(a) === 'm2' ? a : b;
  t.is((await drain(h, 'm2', 60)).status, 200);
  t.false(h.manager.readyPoolIds(2).includes(onM2));
  await eventually(() => (h.manager.poolStatus().ready === 2 ? true : undefined), { what: 'the pool refilled' });
  for (const id of h.manager.readyPoolIds(2)) t.is(h.provider.placed.get(id), 'm1');
  await eventually(() => (!h.provider.sandboxes.has(onM2) ? true : undefined), { what: 'the warm sandbox on m2 removed' });
  // A drain begun elsewhere (another Berth server of the cluster) is seen at the next take: that sandbox is not used.
  const warm = h.manager.readyPoolIds(1)[0];
  h.provider.members!.get('m1')!.drain = { deadline: h.clock.t + 60_000, started: h.clock.t };
  h.provider.members!.get('m2')!.drain = null;
  await h.manager.drainTick();
  const s = await h.session();
  t.not(s.id, warm);
  t.is(h.provider.placed.get(s.id), 'm2');
});

test('the instructor sees who is affected: "machine maintenance at" before, the sandbox lost for maintenance after; the learner rejoins', async (t) => {
  const h = cluster();
  const w = await h.workshop();
  type Joined = { learner: { id: string; key: string }; session: { id: string; token: string } };
  const joined: Joined[] = [];
  for (const name of ['Ada', 'Grace']) joined.push((await (await h.join(w.code, name)).json()) as Joined);
  // Ada's sandbox is on m2, Grace's on m1 (the pool made both ahead; the fake is told where they are).
  const [ada, grace] = joined;
  h.provider.placed.set(ada.session.id, 'm2');
  h.provider.placed.set(grace.session.id, 'm1');
  const [adaName, graceName] = ['Ada', 'Grace'];
  const close = h.manager.terminalOpened(ada.session.id);
  const rows: string[] = [];
  const off = h.service.subscribe(w.id, (e) => {
    if (e.type === 'learner') rows.push(`${e.data.name} ${e.data.sandbox} ${e.data.maintenanceAt ?? '-'}`);
  });
  t.is((await drain(h, 'm2', 15)).status, 200);
  const at = new Date(h.clock.t + 15 * 60_000).toISOString();
  await h.service.tick();
  t.deepEqual(rows, [`${adaName} ready ${at}`]);
  const row = async (name: string) => {
    const full = (await (await h.request(`/api/workshops/${w.id}`, { token: ADMIN_TOKEN })).json()) as {
      learnerRows: { name: string; sandbox: string; maintenanceAt: string | null }[];
    };
    return full.learnerRows.find((r) => r.name === name);
  };
  t.like(await row(graceName), { sandbox: 'ready', maintenanceAt: null });
  // A workshop keeps its learners' sessions alive; its keep-alive is not the learner's use, the open terminal is.
  h.clock.advance(10 * 60_000);
  await h.service.tick();
  t.is(await h.manager.drainTick(), 0);
  h.clock.advance(5 * 60_000);
  t.is(await h.manager.drainTick(), 1);
  close();
  await h.service.tick();
  off();
  // (Rows are sent again when other fields change, the time of the last activity among them.)
  t.deepEqual([...new Set(rows.filter((r) => r.startsWith(adaName)))], [`${adaName} ready ${at}`, `${adaName} lost ${at}`]);
  t.false(
    rows.some((r) => r.startsWith(graceName) && !r.endsWith(' -')),
    'Grace is not affected',
  );
  t.like(await row(adaName), { sandbox: 'lost', maintenanceAt: at });
  await assertError(t, await h.request(`/api/sessions/${ada.session.id}`, { token: ada.session.token }), 503, 'MACHINE_MAINTENANCE');
  // Rejoining with their key gives a new sandbox on the other machine, their results kept.
  const again = await h.join(w.code, adaName, { key: ada.learner.key });
  t.is(again.status, 201, await again.clone().text());
  const j = (await again.json()) as Joined;
  t.is(j.learner.id, ada.learner.id);
  t.is(h.provider.placed.get(j.session.id), 'm1');
  t.like(await row(adaName), { sandbox: 'ready', maintenanceAt: null });
  t.truthy(grace.session.id);
});

test("an instructor's reset during a drain rebuilds the sandbox on another machine: no longer affected, not ended at the deadline", async (t) => {
  const h = cluster();
  const w = await h.workshop();
  const j = (await (await h.join(w.code, 'Ada')).json()) as { learner: { id: string }; session: { id: string; token: string } };
  h.provider.placed.set(j.session.id, 'm2');
  const close = h.manager.terminalOpened(j.session.id);
  t.is((await drain(h, 'm2', 10)).status, 200);
  t.truthy((await status(h, j.session)).maintenanceAt);
  const r = await h.request(`/api/workshops/${w.id}/learners/${j.learner.id}/reset`, { method: 'POST', token: ADMIN_TOKEN });
  t.is(r.status, 200, await r.clone().text());
  t.is(h.provider.placed.get(j.session.id), 'm1');
  await h.manager.drainTick();
  t.false('maintenanceAt' in (await status(h, j.session)));
  h.clock.advance(10 * 60_000);
  t.is(await h.manager.drainTick(), 0);
  t.is((await h.request(`/api/sessions/${j.session.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: j.session.token })).status, 200);
  close();
});

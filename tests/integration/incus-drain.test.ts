// Planned maintenance on a real two-member Incus cluster formed on this machine (tests/helpers/incus-cluster.ts):
// the drain mark is the member config key user.berth.drain, written back whole with its ETag (other keys, roles and
// groups kept), read back for the list, taken off again; an unknown member is 404 MACHINE_NOT_FOUND; a session's
// machine is its node1's location; and through the Berth app, a session on a drained member ends once unused, its
// instances removed from Incus, its learner told 503 MACHINE_MAINTENANCE. (Placement that leaves a drained member
// out is the provider's create path, tested with the cluster test.) Everything made is taken down afterwards.
// Needs root, incusd's binaries and the learner image the bring-up built; without them the test is skipped.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { DRAIN_KEY } from '../../sandbox-server/engine/incus/cluster.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { DRAIN_IDLE_MS } from '../../sandbox-server/sandboxes/manager.ts';
import { ADMIN_TOKEN, assertError, buildApp } from '../helpers/app-harness.ts';
import { clusterImage, IncusCluster } from '../helpers/incus-cluster.ts';

const image = clusterImage();
const usable = image !== undefined;
const it = usable ? test.serial : test.serial.skip;

let cluster: IncusCluster | undefined;
let client: IncusClient;
let provider: IncusProvider;
const sessions: string[] = [];

test.before(async (t) => {
  if (!usable) return;
  cluster = new IncusCluster(mkdtempSync(join(tmpdir(), 'berth-drain-')), (m) => t.log(m));
  await cluster.start(image!);
  client = new IncusClient({ socketPath: cluster.members[0].socket });
  provider = new IncusProvider({ client, image: 'berth-learner', instance: 'drain-test', mirrorPort: null });
});

test.after.always(async (t) => {
  for (const id of sessions) await provider?.removeSandbox(id).catch((err: unknown) => t.log(`removing ${id}: ${(err as Error).message}`));
  const problems = await cluster?.stop();
  if (problems?.length) console.error(`cluster teardown:\n  ${problems.join('\n  ')}`);
});

type MemberJson = { config: Record<string, string>; roles: string[]; groups: string[]; description: string };
const member = (name: string) => client.get<MemberJson>(`/1.0/cluster/members/${name}`);

it('the drain mark: set with the other keys, roles and groups kept, listed, taken off; an unknown member is 404', async (t) => {
  cluster!.incus(cluster!.members[0], ['cluster', 'set', 'm2', 'user.note', 'kept']);
  const before = await member('m2');
  t.deepEqual(
    (await provider.machineList())?.map((m) => `${m.name} ${m.status} ${m.drain}`),
    ['m1 Online null', 'm2 Online null'],
  );
  const drain = { deadline: Date.now() + 600_000, started: Date.now() };
  await provider.setDrain('m2', drain);
  const marked = await member('m2');
  t.deepEqual(marked.config, { 'user.note': 'kept', [DRAIN_KEY]: JSON.stringify(drain) });
  t.deepEqual([marked.roles, marked.groups, marked.description], [before.roles, before.groups, before.description]);
  t.deepEqual(
    (await provider.machineList())?.map((m) => [m.name, m.drain]),
    [
      ['m1', null],
      ['m2', drain],
    ],
  );
  // As the incus CLI shows it to an operator.
  t.is(cluster!.incus(cluster!.members[0], ['cluster', 'get', 'm2', DRAIN_KEY]).trim(), JSON.stringify(drain));
  await provider.setDrain('m2', null);
  t.deepEqual((await member('m2')).config, { 'user.note': 'kept' });
  await provider.setDrain('m2', null); // not marked: nothing to do
  await t.throwsAsync(provider.setDrain('m3', drain), { message: /No machine called "m3"/ });
  const e = await provider.setDrain('m3', drain).catch((err: unknown) => err as { status: number; code: string });
  t.like(e, { status: 404, code: 'MACHINE_NOT_FOUND' });
});

it("through the app: a session's machine is its node1's location; drained, an unused session ends on Incus and its learner gets 503 MACHINE_MAINTENANCE", async (t) => {
  const h = buildApp({ BERTH_SANDBOX_MEMORY: '1g', BERTH_SANDBOX_PIDS: '1024', BERTH_SANDBOX_DISK: '3g' }, provider);
  const s = await h.session();
  sessions.push(s.id);
  const where = (await client.get<{ location: string }>(`/1.0/instances/${instanceName(s.id, 'node1')}`)).location;
  t.is(await provider.machineOf(s.id), where);
  const list = (await (await h.request('/api/machines', { token: ADMIN_TOKEN })).json()) as { machines: { name: string; sessions: number }[] };
  t.deepEqual(
    list.machines.map((m) => `${m.name} ${m.sessions}`),
    ['m1', 'm2'].map((m) => `${m} ${m === where ? 1 : 0}`),
  );
  // Just made: in use, kept. Unused for two minutes: ended at the next pass.
  const r = await h.request(`/api/machines/${where}/drain`, { method: 'POST', token: ADMIN_TOKEN, json: { minutes: 30 } });
  t.is(r.status, 200, await r.clone().text());
  t.like(await r.json(), { name: where, sessions: 1, drain: { drained: false } });
  t.is(((await (await h.request(`/api/sessions/${s.id}`, { token: s.token })).json()) as { maintenanceAt?: string }).maintenanceAt !== undefined, true);
  h.clock.advance(DRAIN_IDLE_MS + 1000);
  t.is(await h.manager.drainTick(), 1);
  t.deepEqual(await provider.instances(s.id), [], 'its nodes are gone from Incus');
  await assertError(t, await h.request(`/api/sessions/${s.id}/exec`, { method: 'POST', json: { cmd: 'true' }, token: s.token }), 503, 'MACHINE_MAINTENANCE');
  const after = await h.request(`/api/machines/${where}/drain`, { method: 'DELETE', token: ADMIN_TOKEN });
  t.like(await after.json(), { name: where, sessions: 0, drain: null });
  t.false(DRAIN_KEY in (await member(where)).config);
  h.close();
});

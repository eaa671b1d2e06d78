// Which cluster members may take learners (issue 18), from what their member agents report in member config,
// and the cluster group Berth keeps to exactly those; the refusal at start. A stand-in answers as Incus 6.0 does
// (checked against a real two-member cluster: tests/integration/incus-cluster.test.ts).
import test from 'ava';
import type { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusError } from '../../sandbox-server/engine/incus/api.ts';
import { AGENT_KEY, AGENT_STALE_MS, DRAIN_KEY, fleetCheck, syncPlacement, unready } from '../../sandbox-server/engine/incus/cluster.ts';
import { incusError } from '../../sandbox-server/engine/incus/errors.ts';

const NOW = 1_800_000_000_000;
const agent = (at: number, policy = 'allowlist') => JSON.stringify({ at, policy, mirror: true, version: 1 });

function standIn(
  members: { name: string; status?: string; config?: Record<string, string> }[],
  { clustered = true, remote = false, group = null as string[] | null } = {},
) {
  const log: string[] = [];
  let groupMembers = group;
  const client = {
    remote,
    socketPath: '/fake.sock',
    async get(path: string) {
      log.push(`GET ${path}`);
      if (path === '/1.0/cluster') return { enabled: clustered };
      if (path === '/1.0/cluster/members?recursion=1')
        return members.map((m) => ({ server_name: m.name, status: m.status ?? 'Online', config: m.config ?? {}, groups: ['default'] }));
      if (path === '/1.0/cluster/groups/berth') {
        if (!groupMembers) throw new IncusError(404, 'Cluster group not found');
        return { name: 'berth', members: groupMembers };
      }
      throw new Error(`unexpected GET ${path}`);
    },
    async run(method: string, path: string, body: { members: string[] }) {
      log.push(`${method} ${path} ${body.members.join(',')}`);
      groupMembers = body.members;
      return {};
    },
  };
  return { client: client as unknown as IncusClient, log, group: () => groupMembers };
}

test('a member takes learners only while online, reporting lately under the same policy, and not drained', (t) => {
  const m = (status: string, config: Record<string, string>) => ({ name: 'm1', status, config, groups: [] });
  t.is(unready(m('Online', { [AGENT_KEY]: agent(NOW - 1000) }), 'allowlist', NOW), null);
  t.is(unready(m('Offline', { [AGENT_KEY]: agent(NOW) }), 'allowlist', NOW), 'it is Offline');
  t.regex(unready(m('Online', {}), 'allowlist', NOW) ?? '', /no Berth member agent runs there \(npm run member\)/);
  t.regex(unready(m('Online', { [AGENT_KEY]: agent(NOW - AGENT_STALE_MS - 5000) }), 'allowlist', NOW) ?? '', /last reported 65 s ago/);
  t.regex(unready(m('Online', { [AGENT_KEY]: agent(NOW, 'open') }), 'allowlist', NOW) ?? '', /egress policy open, this server to allowlist/);
  t.regex(unready(m('Online', { [AGENT_KEY]: '{' }), 'allowlist', NOW) ?? '', /not JSON/);
  t.is(unready(m('Online', { [AGENT_KEY]: agent(NOW), [DRAIN_KEY]: '{"deadline":1}' }), 'allowlist', NOW), 'it is being drained');
});

test('the group is made with the ready members, changed only when they change, and follows an agent that stops', async (t) => {
  const members = [
    { name: 'm1', config: { [AGENT_KEY]: agent(NOW) } },
    { name: 'm2', config: {} as Record<string, string> },
  ];
  const s = standIn(members);
  const p = await syncPlacement(s.client, 'allowlist', NOW);
  t.deepEqual(p.ready, ['m1']);
  t.true(p.changed);
  t.deepEqual(
    s.log.filter((l) => !l.startsWith('GET')),
    ['POST /1.0/cluster/groups m1'],
  );
  t.false((await syncPlacement(s.client, 'allowlist', NOW + 1000)).changed, 'nothing to write');
  members[1].config[AGENT_KEY] = agent(NOW + 2000);
  t.deepEqual((await syncPlacement(s.client, 'allowlist', NOW + 3000)).ready, ['m1', 'm2']);
  t.deepEqual(s.group(), ['m1', 'm2']);
  // m1's agent stops reporting: m1 leaves the group once its last report is stale.
  const later = NOW + AGENT_STALE_MS + 1;
  members[1].config[AGENT_KEY] = agent(later);
  const q = await syncPlacement(s.client, 'allowlist', later);
  t.deepEqual(q.ready, ['m2']);
  t.regex(q.unready[0].reason, /last reported 60 s ago/);
  t.is(s.log.at(-1), 'PUT /1.0/cluster/groups/berth m2');
});

test('the check at start: a single local server is fine; a remote one must be a cluster; a fleet needs a ready member', async (t) => {
  t.deepEqual(await fleetCheck(standIn([], { clustered: false }).client, 'allowlist'), { fleet: false, refused: null });
  const single = await fleetCheck(standIn([], { clustered: false, remote: true }).client, 'allowlist');
  t.true(single.fleet);
  t.regex(single.refused ?? '', /^BERTH_INCUS_URL is a single Incus server.*incus cluster enable/);
  t.deepEqual(await fleetCheck(standIn([{ name: 'm1' }]).client, 'allowlist'), { fleet: false, refused: null }, 'a cluster of one on this host is this host');
  const none = await fleetCheck(standIn([{ name: 'm1' }, { name: 'm2', status: 'Offline' }]).client, 'allowlist');
  t.true(none.fleet);
  t.regex(
    none.refused ?? '',
    /^BERTH_INCUS_SOCKET: \/fake.sock: no member of the Incus cluster can take learner nodes: m1: no Berth member agent.*; m2: it is Offline\. Run `npm run member`/,
  );
  const ready = standIn([{ name: 'm1', config: { [AGENT_KEY]: agent(Date.now()) } }, { name: 'm2' }]);
  t.deepEqual(await fleetCheck(ready.client, 'allowlist'), { fleet: true, refused: null });
  // Asked once at start: the cluster and its members, for the check and the placement it syncs.
  t.is(ready.log.filter((l) => l === 'GET /1.0/cluster').length, 1);
  t.is(ready.log.filter((l) => l === 'GET /1.0/cluster/members?recursion=1').length, 1);
});

test('an empty placement group is a clear 503, not a failure of the engine', (t) => {
  const e = incusError(new IncusError(500, "Couldn't find a cluster member for the instance"), 'Creating the sandbox');
  t.is(e.status, 503);
  t.is(e.code, 'OUT_OF_CAPACITY');
  t.regex(e.message, /no machine can take a new sandbox right now/);
});

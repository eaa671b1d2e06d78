// Placement on an Incus cluster (issue 18) as a sequence of API requests: all nodes of one session on one
// member (node1 where Incus's scheduler puts it, the others aimed at its member), the session's bridge defined
// on each member before it is created, nothing of this on a single server; and the capacity figures summed
// over the machines. The requests are recorded by a stand-in for incusd that answers as Incus 6.0 does; the
// real cluster is the subject of the two-member test issue 18 asks for.
import test from 'ava';
import { IncusError } from '../../sandbox-server/engine/incus/api.ts';
import type { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { KEY, onMember } from '../../sandbox-server/engine/incus/spec.ts';
import { hostFigures } from '../../sandbox-server/workshops/capacity.ts';

const limits = { memoryBytes: 2 ** 30, nanoCpus: 1e9, pids: 1024, diskBytes: 4 * 2 ** 30 };

/** Records every request; places an untargeted instance on `scheduled`, a targeted one on its target. */
function fakeIncus({
  clustered,
  members = ['m1', 'm2'],
  scheduled = 'm2',
  offline = [],
}: {
  clustered: boolean;
  members?: string[];
  scheduled?: string;
  offline?: string[];
}) {
  const log: string[] = [];
  const instances = new Map<string, { location: string; config: Record<string, string> }>();
  const networks: { name: string; config: Record<string, string> }[] = [];
  const target = (path: string) => new URL(path, 'http://x').searchParams.get('target');
  const client = {
    remote: false,
    origin: null,
    socketPath: '/fake',
    async get(path: string) {
      log.push(`GET ${path}`);
      if (path === '/1.0') return { environment: { server_clustered: clustered } };
      if (path === '/1.0/cluster') return { enabled: clustered };
      if (path === '/1.0/cluster/members?recursion=1') return members.map((m) => ({ server_name: m, status: offline.includes(m) ? 'Offline' : 'Online' }));
      if (path === '/1.0/networks') return [];
      if (path.startsWith('/1.0/profiles/')) return { devices: { root: { type: 'disk', path: '/', pool: 'berth' } } };
      if (path.startsWith('/1.0/instances?recursion=1')) {
        // As Incus applies a filter= of config keys ("config.k eq v and …").
        const terms = (new URL(path, 'http://x').searchParams.get('filter') ?? '')
          .split(' and ')
          .filter(Boolean)
          .map((x) => x.split(' eq '));
        return [...instances]
          .filter(([, i]) => terms.every(([k, v]) => i.config[k.replace(/^config\./, '')] === v))
          .map(([name, i]) => ({ name, status: 'Running', ...i }));
      }
      const m = /^\/1\.0\/instances\/([^/?]+)$/.exec(path);
      if (m) return { name: m[1], status: 'Stopped', ...instances.get(m[1]) };
      throw new Error(`unexpected GET ${path}`);
    },
    async run(method: string, path: string, body?: { name?: string; config?: Record<string, string> }) {
      log.push(`${method} ${path}${body?.name ? ` ${body.name}` : ''}`);
      if (method === 'POST' && path === '/1.0/networks') networks.push(body as never);
      if (method === 'POST' && path.startsWith('/1.0/instances')) {
        // The scheduler takes a while: the other nodes must wait for its choice, not guess.
        // A group (`@name`) is left to the scheduler too, among its members.
        const member = target(path)?.startsWith('@') ? null : target(path);
        if (!member) await new Promise((r) => setTimeout(r, 20));
        instances.set(body!.name!, { location: clustered ? (member ?? scheduled) : 'none', config: body!.config ?? {} });
      }
      return {};
    },
    async http(method: string, path: string) {
      log.push(`${method} ${path}`);
      return { status: 200, body: Buffer.from('') };
    },
    async writeFile() {
      /* files are not the subject */
    },
    async mkdir() {
      /* ditto */
    },
  };
  return { client: client as unknown as IncusClient, log, instances, networks };
}

test('onMember aims a request at a member, or leaves it to Incus', (t) => {
  t.is(onMember('/1.0/instances', 'member 2'), '/1.0/instances?target=member%202');
  t.is(onMember('/1.0/networks?recursion=1', 'm1'), '/1.0/networks?recursion=1&target=m1');
  t.is(onMember('/1.0/instances', null), '/1.0/instances');
});

test('in a cluster: the bridge is defined on each member first, node1 is left to the scheduler, the others follow it', async (t) => {
  const { client, log, instances } = fakeIncus({ clustered: true });
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: null });
  await p.createSandbox('s1', ['node1', 'node2', 'node3'], limits);
  const nets = log.filter((l) => l.startsWith('POST /1.0/networks'));
  t.deepEqual(nets, ['POST /1.0/networks?target=m1 bs-s1', 'POST /1.0/networks?target=m2 bs-s1', 'POST /1.0/networks bs-s1']);
  const creates = log.filter((l) => l.startsWith('POST /1.0/instances'));
  t.is(creates[0], 'POST /1.0/instances berth-s1-node1');
  t.deepEqual(creates.slice(1).sort(), ['POST /1.0/instances?target=m2 berth-s1-node2', 'POST /1.0/instances?target=m2 berth-s1-node3']);
  t.deepEqual(
    [...instances.values()].map((i) => i.location),
    ['m2', 'm2', 'm2'],
  );
  // A node added later joins its session's member.
  await p.addNode('s1', 'node4', limits);
  t.is(log.filter((l) => l.startsWith('POST /1.0/instances')).at(-1), 'POST /1.0/instances?target=m2 berth-s1-node4');
  t.is(instances.get('berth-s1-node4')?.config[KEY.sandbox], 's1');
});

test('in a fleet: node1 is placed among the cluster group of ready members, the others follow it; the member agents answer DNS', async (t) => {
  const { client, log, instances, networks } = fakeIncus({ clustered: true });
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: 5000, placementGroup: 'berth', agentDns: true });
  await p.createSandbox('s1', ['node1', 'node2'], limits);
  const creates = log.filter((l) => l.startsWith('POST /1.0/instances'));
  t.deepEqual(creates, ['POST /1.0/instances?target=%40berth berth-s1-node1', 'POST /1.0/instances?target=m2 berth-s1-node2']);
  t.deepEqual(
    [...instances.values()].map((i) => i.location),
    ['m2', 'm2'],
  );
  // No dnsmasq on the bridge: the agent on the member answers on the gateway, and the nodes ask it there.
  t.is(networks.at(-1)?.config['dns.mode'], 'none');
  await p.createSandbox('s2', ['node1'], limits);
  t.is(log.filter((l) => l.startsWith('POST /1.0/instances')).at(-1), 'POST /1.0/instances?target=%40berth berth-s2-node1', 'a one-node session too');
});

test('in a cluster, a node1 that fails to be created fails the others too, none left waiting', async (t) => {
  const { client, log } = fakeIncus({ clustered: true });
  const run = client.run.bind(client);
  client.run = (async (method: string, path: string, body?: { name?: string }) => {
    if (method === 'POST' && body?.name === 'berth-s2-node1') throw new Error('no member has room');
    return run(method, path, body as never);
  }) as typeof client.run;
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: null });
  await t.throwsAsync(p.createSandbox('s2', ['node1', 'node2'], limits));
  t.false(
    log.some((l) => l.includes('berth-s2-node2') && l.startsWith('POST /1.0/instances')),
    'node2 was never placed blindly',
  );
});

test('in a cluster, a bridge create that failed on a member is run again without its global config, as Incus asks', async (t) => {
  const { client, log } = fakeIncus({ clustered: true });
  const run = client.run.bind(client);
  const finals: string[] = [];
  client.run = (async (method: string, path: string, body?: { name?: string; config?: Record<string, string> }) => {
    if (method === 'POST' && path === '/1.0/networks') {
      finals.push(body?.config ? 'with config' : 'without config');
      // The first run fails on a member (transient, so retried); the second, with config again, is refused.
      if (finals.length === 1) throw new IncusError(500, 'Failed to delete bridge children interfaces: device busy');
      if (body?.config) throw new IncusError(500, 'Network already partially created. Please do not specify any global config when re-running create');
    }
    return run(method, path, body as never);
  }) as typeof client.run;
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: null });
  await p.createSandbox('s4', ['node1'], limits);
  t.deepEqual(finals, ['with config', 'with config', 'without config']);
  t.true(log.some((l) => l === 'POST /1.0/instances berth-s4-node1'));
});

test('on a single server: no member named, no pending networks, nodes created at once', async (t) => {
  const { client, log } = fakeIncus({ clustered: false });
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: null });
  await p.createSandbox('s3', ['node1', 'node2'], limits);
  t.deepEqual(
    log.filter((l) => l.startsWith('POST')),
    ['POST /1.0/networks bs-s3', 'POST /1.0/instances berth-s3-node1', 'POST /1.0/instances berth-s3-node2'],
  );
  t.false(log.some((l) => l.includes('target=')));
  t.is(await p.machines(), null, "a local single server: the host's own figures");
});

test('capacity figures are summed over the machines; a machine without a pool figure adds no disk', (t) => {
  const GiB = 2 ** 30;
  const f = hostFigures(
    [
      { name: 'm1', cpus: 2, memoryTotal: 24 * GiB, memoryAvailable: 20 * GiB, diskFree: 30 * GiB },
      { name: 'm2', cpus: 4, memoryTotal: 32 * GiB, memoryAvailable: 30 * GiB, diskFree: null },
    ],
    0,
  );
  t.deepEqual({ cpus: f.cpus, memory: f.memory, diskFree: f.diskFree }, { cpus: 6, memory: { total: 56 * GiB, available: 50 * GiB }, diskFree: 30 * GiB });
  t.is(hostFigures(null, 5 * GiB).machines, null);
  t.is(hostFigures(null, 5 * GiB).diskFree, 5 * GiB, 'free disk here as the caller measured it');
  t.true(hostFigures(null, 0).memory.total > 0, "this host's own /proc/meminfo");
});

test('a member offline and no spare bridge: 503 ENGINE_UNAVAILABLE at once, and no network asked of Incus (it would be left errored)', async (t) => {
  const { client, log } = fakeIncus({ clustered: true, offline: ['m2'] });
  const p = new IncusProvider({ client, image: 'berth-learner', instance: 'i1', mirrorPort: null });
  const err = await t.throwsAsync(p.createSandbox('s1', ['node1'], limits));
  t.is((err as { code?: string }).code, 'ENGINE_UNAVAILABLE');
  t.regex(err!.message, /machines behind this Berth server is away/);
  t.deepEqual(
    log.filter((l) => /^POST \/1\.0\/(networks|instances)/.test(l)),
    [],
  );
});

// The Incus provider on a real two-member cluster formed on this machine (tests/helpers/incus-cluster.ts):
// sessions go where Incus's scheduler puts their first node until both members hold some, every node of a
// session lands on its first node's member (they share that member's bridge), exec and a terminal reach a
// node on each member through member 1's socket, capacity sums both members, and the server refuses to run
// nodes on a cluster of several (its firewall acts on this host only). Everything the test made is taken down
// afterwards, whatever happened. Needs root, incusd's binaries and the learner image the bring-up built
// (<state>/incus/berth-learner-*.tar); without them the test is skipped, not passed.
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stateDir } from '../../runtime/bootstrap/engine.ts';
import { INCUSD } from '../../runtime/incus/daemons.ts';
import { loadConfig } from '../../sandbox-server/config.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { clusterMembers, refusal } from '../../sandbox-server/engine/incus/cluster.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { IncusCluster } from '../helpers/incus-cluster.ts';
import { eventually } from '../helpers/wait.ts';

const imageDir = join(stateDir(process.env), 'incus');
const image = existsSync(imageDir) ? readdirSync(imageDir).find((f) => /^berth-learner-.*\.tar$/.test(f)) : undefined;
const usable = process.getuid?.() === 0 && existsSync(INCUSD) && image !== undefined;
const it = usable ? test.serial : test.serial.skip;

let cluster: IncusCluster | undefined;
let client: IncusClient;
let provider: IncusProvider;
const sessions: string[] = [];
const limits = loadConfig({ BERTH_SANDBOX_MEMORY: '1g', BERTH_SANDBOX_PIDS: '1024', BERTH_SANDBOX_DISK: '3g' }).limits;
const opts = { timeoutMs: 60_000, maxOutput: 65536 };

test.before(async (t) => {
  if (!usable) return;
  cluster = new IncusCluster(mkdtempSync(join(tmpdir(), 'berth-cluster-')), (m) => t.log(m));
  await cluster.start(join(imageDir, image!));
  client = new IncusClient({ socketPath: cluster.members[0].socket });
  provider = new IncusProvider({ client, image: 'berth-learner', instance: 'cluster-test', mirrorPort: null });
});

test.after.always(async (t) => {
  for (const id of sessions) await provider?.removeSandbox(id).catch((err: unknown) => t.log(`removing ${id}: ${(err as Error).message}`));
  const problems = await cluster?.stop();
  if (problems?.length) console.error(`cluster teardown:\n  ${problems.join('\n  ')}`);
});

const location = async (id: string, node: string) => (await client.get<{ location: string }>(`/1.0/instances/${instanceName(id, node)}`)).location;

it('two members online; the server refuses the cluster, naming the socket and what acts on this host only', async (t) => {
  const members = await clusterMembers(client);
  t.deepEqual(members?.map((m) => `${m.name} ${m.status}`).sort(), ['m1 Online', 'm2 Online']);
  t.regex((await refusal(client)) ?? '', /^BERTH_INCUS_SOCKET: .* is a member of an Incus cluster of 2,.*firewall/);
  const machines = await provider.machines();
  t.deepEqual(machines?.map((m) => m.name).sort(), ['m1', 'm2']);
  t.true(
    machines!.every((m) => m.cpus > 0 && m.memoryTotal > 0 && (m.diskFree ?? 0) > 0),
    JSON.stringify(machines),
  );
});

it('sessions until both members hold some: each session whole on one member, its nodes reaching each other', async (t) => {
  const on = new Map<string, string[]>();
  for (let i = 0; i < 4 && on.size < 2; i++) {
    const id = `cl${i}${Date.now().toString(36)}`;
    sessions.push(id);
    const t0 = performance.now();
    await provider.createSandbox(id, ['node1', 'node2'], limits);
    const [l1, l2] = [await location(id, 'node1'), await location(id, 'node2')];
    t.log(`FIGURE session ${i + 1} (2 nodes) created on ${l1} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    t.is(l2, l1, "node2 on node1's member");
    on.set(l1, [...(on.get(l1) ?? []), id]);
  }
  t.deepEqual([...on.keys()].sort(), ['m1', 'm2'], 'the scheduler spread the sessions');
  // On each member: node2's engine from node1 over the session's bridge, as the lessons do it.
  for (const [member, ids] of on) {
    const r = await provider.run(
      ids[0],
      'node1',
      "for i in $(seq 100); do docker -H tcp://node2:2375 info --format '{{.Name}}' 2>/dev/null && exit; sleep 0.2; done; exit 1",
      opts,
    );
    t.is(r.stdout.trim(), 'node2', `${member}: ${r.stderr}`);
  }
  // A node added later joins its session's member.
  const [first] = sessions;
  await provider.addNode(first, 'node3', limits);
  t.is(await location(first, 'node3'), await location(first, 'node1'));
});

it('a terminal on a node of each member, through member 1', async (t) => {
  const byMember = new Map<string, string>();
  for (const id of sessions) byMember.set(await location(id, 'node1'), id);
  t.is(byMember.size, 2);
  for (const [member, id] of byMember) {
    const { stream } = await provider.openTty(id, 'node1', ['bash', '--noprofile', '--norc'], { cols: 80, rows: 24 });
    let seen = '';
    stream.on('data', (b: Buffer) => {
      seen += b.toString('utf8');
    });
    stream.write(`echo "on-$((40 + 2))-$(hostname)"\r`);
    await eventually(() => (/on-42-\S+/.test(seen) ? true : undefined), {
      timeoutMs: 60_000,
      what: `the terminal on ${member} (seen: ${JSON.stringify(seen.slice(-200))})`,
    });
    t.pass(`${member}: ${/on-42-\S+/.exec(seen)?.[0]}`);
    stream.destroy();
  }
});

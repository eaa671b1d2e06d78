// A three-node session: the nodes find each other by name, form a swarm, share tasks and an overlay
// network; the engine API a node exposes to its session is out of reach from any other session.
import test from 'ava';
import { type Created, createSession, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

let s: TestServer;
let c: Created;
test.before(async () => {
  s = await startServer({ BERTH_MAX_SANDBOXES: '5' });
  c = await createSession(s, { nodes: 3 });
});
test.after.always(async () => {
  if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s?.stop();
});

const on = (node: string, cmd: string) => exec(s, c, cmd, { node, timeoutMs: 120_000 });

test.serial('swarm init on node1, join from node2 and node3, three Ready nodes, tasks on all three', async (t) => {
  t.deepEqual(
    c.nodes.map((n) => n.name),
    ['node1', 'node2', 'node3'],
  );
  const init = await on('node1', 'docker swarm init --advertise-addr $(hostname -i) >/dev/null && docker swarm join-token -q worker');
  t.is(init.exitCode, 0, init.stderr);
  const token = init.stdout.trim();
  for (const node of ['node2', 'node3']) {
    const join = await on(node, `docker swarm join --advertise-addr $(hostname -i) --token ${token} node1:2377`);
    t.is(join.exitCode, 0, `${node}: ${join.stderr}`);
    t.regex(join.stdout, /joined a swarm as a worker/);
  }
  let ls = '';
  await eventually(
    async () => {
      ls = (await on('node1', "docker node ls --format '{{.Hostname}} {{.Status}}' | sort")).stdout;
      return ls === 'node1 Ready\nnode2 Ready\nnode3 Ready\n' ? ls : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 1000, what: () => `three Ready nodes (last: ${JSON.stringify(ls)})` },
  );

  const svc = await on(
    'node1',
    'docker service create --name pinger --replicas 3 busybox sleep 1d >/dev/null && docker service ps pinger --filter desired-state=running --format "{{.Node}} {{.CurrentState}}"',
  );
  t.is(svc.exitCode, 0, svc.stderr);
  const rows = svc.stdout.trim().split('\n').sort();
  t.deepEqual(
    rows.map((r) => r.split(' ')[0]),
    ['node1', 'node2', 'node3'],
    svc.stdout,
  );
  t.true(
    rows.every((r) => / Running /.test(r)),
    svc.stdout,
  );
  // Each task really is a container in that node's own engine.
  for (const node of ['node2', 'node3']) {
    t.is((await on(node, 'docker ps --filter label=com.docker.swarm.service.name=pinger -q | wc -l')).stdout.trim(), '1', node);
  }
});

test.serial('an overlay network carries a service to attachable containers on its own node and on the others', async (t) => {
  const r = await on(
    'node1',
    [
      'docker network create -d overlay --attachable appnet >/dev/null',
      // Virtual IPs need IPVS, which a rootless engine cannot set up: DNS round robin reaches the tasks.
      'docker service create --name cache --network appnet --endpoint-mode dnsrr --constraint node.hostname==node1 redis >/dev/null',
      'docker run --rm --network appnet redis redis-cli -h cache ping',
    ].join(' && '),
  );
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout.trim(), 'PONG');
  // Across nodes the packets travel as VXLAN through each node's port forwarder (runtime/engine/overlay-fix.sh).
  // The timeout only bounds a failure: TCP's own retries cover the moment before the new device is adjusted.
  for (const node of ['node2', 'node3']) {
    const far = await on(node, 'docker run --rm --network appnet redis timeout 60 redis-cli -h cache ping');
    t.is(far.exitCode, 0, `${node}: ${far.stderr}`);
    t.is(far.stdout.trim(), 'PONG', node);
  }
});

test.serial("node2's engine API answers inside the session and nowhere else", async (t) => {
  const inside = await on('node1', 'docker -H tcp://node2:2375 info --format "{{.Name}}"');
  t.is(inside.stdout.trim(), 'node2', inside.stderr);
  await withSession(s, {}, async (other) => {
    const ip = (await on('node2', 'hostname -i')).stdout.trim();
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const probe = await exec(s, other, `curl -s -m 3 http://${ip}:2375/version >/dev/null; echo $?`);
    t.not(probe.stdout.trim(), '0', "another session cannot reach node2's engine API");
  });
});

import test from 'ava';
import { execFds, execReturn, IncusError, operationResult, parseEnvelope } from '../../sandbox-server/engine/incus/api.ts';
import { incusError, isTransient, SOCKETS_FAILED, withRetry } from '../../sandbox-server/engine/incus/errors.ts';
import { daemonJson, hostsFile, nodeEnv, upstreamResolver } from '../../sandbox-server/engine/incus/node-files.ts';
import {
  bridgeName,
  instanceBody,
  instanceName,
  networkBody,
  nodeIp,
  parseInstanceName,
  subnetAt,
  subnetIndexOf,
} from '../../sandbox-server/engine/incus/spec.ts';
import { ApiError } from '../../sandbox-server/errors.ts';

// Replies as incusd 6.0 sends them (captured from /var/lib/incus/unix.socket).
const execOp = {
  id: 'f3c1',
  class: 'websocket',
  status: 'Running',
  status_code: 103,
  err: '',
  metadata: { fds: { 0: 'aa', 1: 'bb', 2: 'cc', control: 'dd' }, command: ['bash'] },
};

test('parseEnvelope: sync metadata, async operations, and errors with the daemon status', (t) => {
  const sync = parseEnvelope(200, JSON.stringify({ type: 'sync', status: 'Success', status_code: 200, metadata: { name: 'x' } }));
  t.deepEqual(sync, { type: 'sync', status: 200, metadata: { name: 'x' } });
  const a = parseEnvelope(
    202,
    JSON.stringify({ type: 'async', status: 'Operation created', status_code: 100, operation: '/1.0/operations/f3c1', metadata: execOp }),
  );
  t.is(a.type, 'async');
  if (a.type === 'async') t.deepEqual(execFds(a.operation), { 0: 'aa', 1: 'bb', 2: 'cc', control: 'dd' });
  const e = t.throws(() => parseEnvelope(404, JSON.stringify({ type: 'error', error: 'Instance not found', error_code: 404 })), { instanceOf: IncusError });
  t.is(e.status, 404);
  t.is(t.throws(() => parseEnvelope(500, '<html>'), { instanceOf: IncusError }).status, 500);
});

test('operationResult and execReturn: success, failure and cancel; the exit status from metadata.return', (t) => {
  const done = { id: 'x', status: 'Success', statusCode: 200, err: '', metadata: { return: 137 } };
  t.is(execReturn(operationResult(done)), 137);
  t.is(execReturn({}), -1);
  const failed = t.throws(() => operationResult({ ...done, status: 'Failure', statusCode: 400, err: 'Failed creating instance' }), { instanceOf: IncusError });
  t.is(failed.message, 'Failed creating instance');
  t.is(t.throws(() => operationResult({ ...done, status: 'Cancelled', statusCode: 401 }), { instanceOf: IncusError }).status, 409);
  t.throws(() => execFds({ ...done, metadata: {} }));
});

test('incusError: Berth codes with safe messages, the daemon message kept only as the cause', (t) => {
  const raw = new IncusError(404, 'Instance not found');
  const e = incusError(raw, 'Running the command');
  t.true(e instanceof ApiError);
  t.is(e.code, 'SESSION_NOT_FOUND');
  t.false(e.message.includes('Instance not found'));
  t.is(e.cause, raw);
  t.is(incusError(new IncusError(400, 'Instance is not running'), 'x').code, 'CONFLICT');
  t.is(incusError(Object.assign(new Error('connect ENOENT'), { code: 'ENOENT', syscall: 'connect' }), 'x').code, 'ENGINE_UNAVAILABLE');
  const other = incusError(new IncusError(500, 'Failed to run: lxc-start: /var/lib/incus/containers/x: secret detail'), 'Starting');
  t.is(other.code, 'SANDBOX_FAILED');
  t.false(other.message.includes('/var/lib'));
  const api = new ApiError(408, 'EXEC_TIMEOUT', 'slow');
  t.is(incusError(api, 'x'), api);
  // A cluster member away: Incus makes and deletes session bridges only with every member there (measured
  // messages, tests/integration/incus-cluster.test.ts), before the member is declared offline and after.
  for (const msg of [
    'failed to notify peer 10.250.9.2:8443: Get "https://10.250.9.2:8443/1.0": Unable to connect to: 10.250.9.2:8443 ([dial tcp 10.250.9.2:8443: connect: connection refused])',
    'peer node 10.250.9.2:8443 is down',
  ]) {
    const away = incusError(new IncusError(500, msg), 'Creating the sandbox');
    t.is(away.status, 503);
    t.is(away.code, 'ENGINE_UNAVAILABLE');
    t.regex(away.message, /machines behind this Berth server is away.*Try again/);
    t.false(away.message.includes('10.250'));
  }
});

test('parseInstanceName: instanceName read back; other names are not Berth nodes', (t) => {
  t.deepEqual(parseInstanceName(instanceName('ab12xq', 'node3')), { sandboxId: 'ab12xq', node: 'node3' });
  for (const n of ['berth-ab12-x', 'other-ab12-node1', 'berth--node1', 'berth-AB-node1']) t.is(parseInstanceName(n), null, n);
});

test('withRetry retries only the transient failures: bridge children, the exec attach, exec sockets that did not connect', async (t) => {
  t.true(isTransient(new IncusError(503, `${SOCKETS_FAILED}: Unexpected server response: 500`)));
  t.false(isTransient(new Error(`Unexpected server response: 500 (${SOCKETS_FAILED})`)), 'only the start of the message counts');
  t.true(isTransient(new IncusError(500, 'Failed to delete bridge children interfaces: veth1 does not exist')));
  t.true(isTransient(new IncusError(500, 'Failed to retrieve PID of executing child process')));
  t.false(isTransient(new IncusError(500, 'Instance not found')));
  let n = 0;
  t.is(
    await withRetry(
      async () => {
        if (++n < 3) throw new IncusError(500, 'Failed to retrieve PID of executing child process');
        return 'ok';
      },
      3,
      1,
    ),
    'ok',
  );
  t.is(n, 3);
  n = 0;
  await t.throwsAsync(
    withRetry(
      async () => {
        n++;
        throw new IncusError(500, 'No space left');
      },
      3,
      1,
    ),
  );
  t.is(n, 1);
});

test('subnets: /26s of 10.202.0.0/16, nodeN at .10+N, bridge names within 15 characters', (t) => {
  t.deepEqual(subnetAt(0), { index: 0, network: '10.202.0.0', gateway: '10.202.0.1', prefix: 26 });
  const s = subnetAt(1023);
  t.is(s.gateway, '10.202.255.193');
  t.is(nodeIp(s, 'node1'), '10.202.255.203');
  t.is(nodeIp(subnetAt(5), 'node12'), '10.202.1.86');
  for (const i of [0, 5, 77, 1023]) t.is(subnetIndexOf(`${subnetAt(i).gateway}/26`), i);
  t.is(subnetIndexOf('10.201.0.1/26'), null);
  t.is(subnetIndexOf(undefined), null);
  t.throws(() => subnetAt(1024));
  t.throws(() => nodeIp(s, 'manager'));
  t.is(bridgeName('abcdefghijkl'), 'bs-abcdefghijkl');
  t.true(bridgeName('abcdefghijklmnop').length <= 15);
});

test('specs: labels as user.berth.* keys, limits, the isolation settings, and no Incus filter rules', (t) => {
  const net = networkBody({ sandboxId: 'abc', instance: 'i1', subnet: subnetAt(3), berthDns: true });
  t.is(net.config['ipv4.address'], '10.202.0.193/26');
  t.is(net.config['dns.mode'], 'none');
  t.is(net.config['ipv4.firewall'], 'false');
  t.is(net.config['user.berth.sandbox'], 'abc');
  const body = instanceBody({
    sandboxId: 'abc',
    instance: 'i1',
    node: 'node2',
    image: 'berth-learner',
    profile: 'default',
    pool: 'berth',
    network: 'bs-abc',
    limits: { memoryBytes: 2 * 1024 ** 3, nanoCpus: 1.5e9, pids: 2048, diskBytes: 8 * 1024 ** 3 },
    mirrorPort: 5000,
  });
  t.is(body.name, 'berth-abc-node2');
  t.false('limits.cpu' in body.config, 'no cpuset pinning: a CFS quota only');
  t.like(body.config, {
    'security.idmap.isolated': 'true',
    'security.nesting': 'true',
    'security.syscalls.intercept.mknod': 'true',
    'security.syscalls.intercept.setxattr': 'true',
    'limits.memory': '2048MiB',
    'limits.cpu.allowance': '150ms/100ms',
    'limits.processes': '2048',
    'user.berth.node': 'node2',
    'user.berth.role': 'node',
  });
  // The mirror is on the node's loopback at a port no registry tutorial uses (5000 stays the learner's own).
  t.like(body.devices, {
    root: { pool: 'berth', size: '8192MiB' },
    eth0: { network: 'bs-abc' },
    mirror: { bind: 'instance', listen: 'tcp:127.0.0.1:65000', connect: 'tcp:127.0.0.1:5000' },
  });
});

test("node files: the init's env, dockerd on its socket with the mirror, hosts naming the session", (t) => {
  const c = { node: 'node1', ip: '10.202.0.11', prefix: 26, gateway: '10.202.0.1', dns: '10.202.0.1', mirrorPort: 5000 };
  t.regex(nodeEnv(c), /^BERTH_NODE=node1\nBERTH_ADDR=10\.202\.0\.11\/26\nBERTH_GATEWAY=10\.202\.0\.1\nBERTH_DNS=10\.202\.0\.1\n$/);
  const d = JSON.parse(daemonJson(c));
  t.deepEqual(d.hosts, ['unix:///var/run/docker.sock'], "tcp 2375 is the init's, not a dockerd listener");
  t.deepEqual(d['registry-mirrors'], ['http://127.0.0.1:65000']);
  t.is(
    hostsFile([
      { node: 'node10', ip: '10.0.0.20' },
      { node: 'node2', ip: '10.0.0.12' },
    ])
      .split('\n')
      .slice(2)
      .join(' '),
    '10.0.0.12\tnode2 10.0.0.20\tnode10 ',
  );
});

test("without Berth's DNS a node uses the host's upstream resolver, never the host's loopback one", (t) => {
  t.is(upstreamResolver('# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n'), '10.255.255.53');
  t.is(upstreamResolver('nameserver 127.0.0.1\nnameserver ::1\n'), null);
  t.is(upstreamResolver(''), null);
});

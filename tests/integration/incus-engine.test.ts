// Learner nodes as Incus system containers (issue 14), through the Berth server and its exec route, as a
// learner types: Docker's limits land in real cgroups, top/stats work, compose v2 runs, the seeds' Swarm
// walk-through works verbatim, and two learners are two host identities (id ranges, key quota, network).
// Needs incusd (runtime/incus) with the learner image; without it these tests are skipped, not passed.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { join as joinPath } from 'node:path';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { chooseProvider } from '../../sandbox-server/engine/choose.ts';
import { runCommand } from '../../sandbox-server/engine/incus/exec.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { filterQuery, instanceName, KEY } from '../../sandbox-server/engine/incus/spec.ts';
import type { ApiError } from '../../sandbox-server/errors.ts';
import { forkBomb, holdInotify, hostPidsNamed, openInotify, releaseInotify } from '../helpers/exhaust.ts';
import { createSession, exec, startServer, type Created, type TestServer } from '../helpers/server.ts';
import { lineAfter, openTerminal, sizeSeen } from '../helpers/terminal.ts';
import { eventually } from '../helpers/wait.ts';

const SOCKET = process.env.BERTH_INCUS_SOCKET ?? '/var/lib/incus/unix.socket';
const it = existsSync(SOCKET) ? test.serial : test.serial.skip;

// The host's own name is the one allowed name: it resolves from the host's /etc/hosts, with no traffic off this machine.
const SETTINGS = {
  BERTH_PROVIDER: 'incus',
  BERTH_MAX_SANDBOXES: '8',
  BERTH_SANDBOX_MEMORY: '1g',
  BERTH_SANDBOX_PIDS: '1024',
  BERTH_SANDBOX_DISK: '4g',
  BERTH_EGRESS_ALLOW: hostname(),
};
let s: TestServer;
let a: Created; // learner A: one node
let b: Created; // learner B: one node
let sw: Created; // a three-node session for Swarm
const coldMs: number[] = [];

test.before(async () => {
  if (!existsSync(SOCKET)) return;
  s = await startServer(SETTINGS);
  for (const slot of ['a', 'b'] as const) {
    const t0 = performance.now();
    const c = await createSession(s);
    coldMs.push(performance.now() - t0);
    if (slot === 'a') a = c;
    else b = c;
  }
});
test.after.always(async () => {
  for (const c of [a, b, sw]) if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s?.stop();
});

const run = (c: Created, cmd: string, node = 'node1') => exec(s, c, cmd, { node, timeoutMs: 120_000 });

it('BERTH_PROVIDER=auto chooses Incus where incusd holds the learner image, else Docker, and says why', async (t) => {
  const said: string[] = [];
  const log = { info: (_o: object, m: string) => said.push(m), warn: (o: object, m: string) => said.push(`${m} ${JSON.stringify(o)}`) };
  t.is(await chooseProvider('auto', { socket: SOCKET, image: 'berth-learner' }, log), 'incus');
  t.is(await chooseProvider('auto', { socket: SOCKET, image: 'berth-no-such-image' }, log), 'docker');
  t.regex(said.at(-1)!, /no usable image berth-no-such-image/);
  t.is(await chooseProvider('auto', { socket: '/nonexistent/unix.socket', image: 'berth-learner' }, log), 'docker');
  t.regex(said.at(-1)!, /no incusd socket/);
  t.is(await chooseProvider('docker', { socket: SOCKET, image: 'berth-learner' }, log), 'docker', "an operator's choice stands");
});

it('a cold session answers Docker 26 with compose v2, as the learner, on cgroupfs v1 without warnings', async (t) => {
  t.log(`create → engine answering (POST /api/sessions, 1 node): ${coldMs.map((m) => `${(m / 1000).toFixed(2)} s`).join(', ')}`);
  const r = await run(
    a,
    "id -un; id -Gn; docker version --format '{{.Server.Version}}'; docker compose version --short; docker info --format '{{.CgroupDriver}} {{.CgroupVersion}} {{.Driver}}' 2>&1",
  );
  t.is(r.exitCode, 0, r.stderr);
  const [user, groups, server, compose, info] = r.stdout.trim().split('\n');
  t.is(user, 'learner');
  t.true(groups.split(' ').includes('docker'), groups);
  t.regex(server, /^26\./);
  t.regex(compose, /^2\./);
  t.is(info, 'cgroupfs 1 overlay2', r.stdout);
});

it('exec through Incus: stdout and stderr apart, the exit status, output capped, a hard time limit', async (t) => {
  const r = await run(a, 'echo out; echo err >&2; head -c 3000000 /dev/zero | tr "\\0" a; exit 3');
  t.is(r.exitCode, 3);
  t.true(r.stdout.startsWith('out\naaaa'));
  t.is(r.stdout.length, 1024 * 1024, 'capped at BERTH_EXEC_MAX_OUTPUT');
  t.is(r.stderr, 'err\n');
  t.true((r as { truncated?: boolean }).truncated);
  const slow = await s.api(`/api/sessions/${a.id}/exec`, { method: 'POST', token: a.token, json: { cmd: 'sleep 30', timeoutMs: 2000 } });
  t.is(slow.status, 408);
  t.is(((await slow.json()) as { error: { code: string } }).error.code, 'EXEC_TIMEOUT');
});

// Incus can report an exec as failed ("Failed to retrieve PID…") although the command ran, so the server retries
// every command under one id and the node's guard (engine/incus/exec.ts ONCE) runs it at most once. The failure
// itself cannot be provoked on demand; what makes the retry safe is proved here by calls that reuse an id.
it('a command retried under its id runs once: a later or concurrent attempt replays its output and status', async (t) => {
  const client = new IncusClient({ socketPath: SOCKET });
  const node = instanceName(a.id, 'node1');
  const opts = { timeoutMs: 30_000, maxOutput: 1024 * 1024 };
  const id = `test-${process.pid}-seq`;
  const cmd = 'echo ran >> ~/once-count; echo out; echo err >&2; exit 3';
  const first = await runCommand(client, node, cmd, opts, id);
  const again = await runCommand(client, node, cmd, opts, id);
  for (const r of [first, again]) t.deepEqual([r.exitCode, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
  // Two attempts at once, the command still running when the second arrives: both see its result, it ran once.
  const slowId = `test-${process.pid}-concurrent`;
  const slow = 'sleep 1; echo ran >> ~/once-count; echo done';
  const both = await Promise.all([runCommand(client, node, slow, opts, slowId), runCommand(client, node, slow, opts, slowId)]);
  for (const r of both) t.deepEqual([r.exitCode, r.stdout], [0, 'done\n']);
  t.is((await run(a, 'cat ~/once-count')).stdout, 'ran\nran\n', 'two commands, each run once');
  // A replay keeps the cap: output past it is still reported truncated, and the command was not cut short.
  const bigId = `test-${process.pid}-big`;
  const big = 'head -c 3000000 /dev/zero | tr "\\0" a; echo finished >&2';
  for (let i = 0; i < 2; i++) {
    const r = await runCommand(client, node, big, opts, bigId);
    t.is(r.stdout.length, 1024 * 1024);
    t.true(r.truncated);
    t.is(r.stderr, 'finished\n');
  }
  // Output ends with the command, as with docker exec: a process it leaves holding its streams is not waited for.
  const t0 = performance.now();
  const left = await runCommand(client, node, 'sleep 60 & cat <(sleep 60) > /dev/null & echo started', opts, `test-${process.pid}-bg`);
  t.deepEqual([left.exitCode, left.stdout, left.stderr], [0, 'started\n', '']);
  t.true(performance.now() - t0 < 30_000, 'not held until the background job ends');
  // The learner's stdin reaches the first run; a first run whose guard died without a status is reported, not rerun.
  const fed = await runCommand(client, node, 'cat', { ...opts, stdin: Buffer.from('fed') }, `test-${process.pid}-stdin`);
  t.is(fed.stdout, 'fed');
  const lostId = `test-${process.pid}-lost`;
  const doomed = runCommand(client, node, 'sleep 20', opts, lostId);
  // The guard runs as the node's root; the learner is root in its engine's containers, which can see the node's
  // pids. The id is pieced together inside, so that this command's own guard (whose command line holds this
  // script) does not match.
  const killer = `for p in /proc/[0-9]*; do c=$(tr "\\0" " " < $p/cmdline 2>/dev/null); case "$c" in "bash -c "*" $1 $2 "[0-9]*" setpriv "*) kill \${p#/proc/} && k=1;; esac; done; [ -n "$k" ]`;
  const kill = await run(
    a,
    `for i in $(seq 1 100); do docker run --rm --pid host busybox sh -c '${killer}' - berth-once ${lostId} && exit 0; sleep 0.2; done; exit 1`,
  );
  t.is(kill.exitCode, 0, kill.stderr);
  await doomed.catch(() => undefined);
  const lost = await runCommand(client, node, 'sleep 20', opts, lostId).then(
    () => undefined,
    (e: unknown) => e as ApiError,
  );
  t.is(lost?.code, 'SANDBOX_FAILED');
  t.regex(lost?.message ?? '', /lost it before it finished/);
});

it('docker run -m 256m is enforced: an allocation past it is OOM-killed (exit 137, OOMKilled true)', async (t) => {
  const r = await run(
    a,
    [
      'docker run --name oom -m 256m python python3 -c "b = bytearray(400 * 1024 * 1024); print(len(b))"; echo "exit=$?"',
      "docker inspect -f 'oom={{.State.OOMKilled}} limit={{.HostConfig.Memory}}' oom",
      'docker rm oom >/dev/null',
    ].join('; '),
  );
  t.regex(r.stdout, /exit=137/, r.stdout + r.stderr);
  t.regex(r.stdout, /oom=true limit=268435456/);
});

it("--cpus, --cpu-shares and --pids-limit land in the container's cgroup files; top and stats show it with its limit", async (t) => {
  const r = await run(
    a,
    [
      'docker run -d --name lim -m 128m --cpus 0.5 --cpu-shares 512 --pids-limit 50 busybox sleep 300 >/dev/null',
      "id=$(docker inspect -f '{{.Id}}' lim)",
      'echo quota=$(cat /sys/fs/cgroup/cpu/docker/$id/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/docker/$id/cpu.cfs_period_us)',
      'echo shares=$(cat /sys/fs/cgroup/cpu/docker/$id/cpu.shares) pids=$(cat /sys/fs/cgroup/pids/docker/$id/pids.max)',
      'echo memory=$(cat /sys/fs/cgroup/memory/docker/$id/memory.limit_in_bytes)',
      'docker top lim',
      "docker stats --no-stream --format 'stats={{.MemUsage}} pids={{.PIDs}}' lim",
      'docker rm -f lim >/dev/null',
    ].join('; '),
  );
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /quota=50000 period=100000/);
  t.regex(r.stdout, /shares=512 pids=50/);
  t.regex(r.stdout, /memory=134217728/);
  t.regex(r.stdout, /^UID\s+PID\s+PPID.*\n\S+\s+\d+\s+\d+.*sleep 300/m, r.stdout);
  t.regex(r.stdout, /stats=[\d.]+[KMG]i?B \/ 128MiB pids=1/, r.stdout);
});

it('docker compose up -d of a two-service file runs both services', async (t) => {
  const file = 'services:\n  web:\n    image: nginx\n  cache:\n    image: redis\n';
  const r = await run(
    a,
    [
      `mkdir -p ~/app && cd ~/app && printf '${file}' > compose.yaml`,
      'docker compose up -d --quiet-pull 2>&1 | tail -n 3',
      "docker compose ps --format '{{.Service}} {{.State}}' | sort",
      'docker compose exec -T cache redis-cli ping',
      'docker compose down >/dev/null 2>&1',
    ].join(' && '),
  );
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /cache running\nweb running\n/);
  t.regex(r.stdout, /PONG/);
});

it("the seeds' Swarm walk-through works verbatim across three nodes", async (t) => {
  sw = await createSession(s, { nodes: 3 });
  const init = await run(sw, 'docker swarm init');
  t.is(init.exitCode, 0, init.stderr);
  // Exactly the line it printed, as a learner pastes it.
  const join = /^\s*(docker swarm join --token \S+ [\d.]+:2377)\s*$/m.exec(init.stdout)?.[1];
  t.truthy(join, init.stdout);
  for (const node of ['node2', 'node3']) {
    const r = await run(sw, join!, node);
    t.is(r.exitCode, 0, `${node}: ${r.stderr}`);
    t.regex(r.stdout, /This node joined a swarm as a worker/);
  }
  let ls = '';
  await eventually(
    async () => {
      ls = (await run(sw, "docker node ls --format '{{.Hostname}} {{.Status}}' | sort")).stdout;
      return ls === 'node1 Ready\nnode2 Ready\nnode3 Ready\n' ? ls : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 1000, what: () => `three Ready nodes (last: ${JSON.stringify(ls)})` },
  );
  // The session's nodes reach each other's engine by short name, as the lessons' `docker -H` does.
  const remote = await run(sw, "docker -H tcp://node3:2375 info --format '{{.Name}}'", 'node2');
  t.is(remote.stdout.trim(), 'node3', remote.stderr);
});

it("a node added to a running session is named in every node's /etc/hosts, and forgotten when removed", async (t) => {
  const add = await s.api(`/api/sessions/${sw.id}/nodes`, { method: 'POST', token: sw.token });
  t.is(add.status, 201, await add.clone().text());
  t.is(((await add.json()) as { name: string }).name, 'node4');
  const seen = await run(sw, 'getent hosts node4 | wc -l; docker -H tcp://node4:2375 info --format "{{.Name}}"');
  t.is(seen.stdout, '1\nnode4\n', seen.stderr);
  t.is((await s.api(`/api/sessions/${sw.id}/nodes/node4`, { method: 'DELETE', token: sw.token })).status, 204);
  t.is((await run(sw, 'getent hosts node4; echo "gone:$?"', 'node2')).stdout, 'gone:2\n');
});

it('workshop controls: limits change on a running node (lxcfs shows it), and its unreclaimable memory is measured', async (t) => {
  const provider = new IncusProvider({ client: new IncusClient({ socketPath: SOCKET }), image: 'unused', instance: 'unused' });
  const mem = await provider.nodeMemory(a.id, 'node1');
  t.true(mem > 8 * 2 ** 20 && mem < 1024 * 2 ** 20, `node memory ${mem}`);
  t.log(`idle-ish node, unreclaimable memory: ${(mem / 2 ** 20).toFixed(1)} MiB`);
  await provider.updateLimits(a.id, 'node1', { memoryBytes: 768 * 2 ** 20, nanoCpus: 0.5e9, pids: 512 });
  const r = await run(a, "free -m | awk '/^Mem:/ {print $2}'; cat /sys/fs/cgroup/pids/pids.max");
  t.is(r.stdout, '768\n512\n', r.stderr);
  await provider.updateLimits(a.id, 'node1', { memoryBytes: 2 ** 30, nanoCpus: 1e9, pids: 1024 });
  t.is((await run(a, "free -m | awk '/^Mem:/ {print $2}'")).stdout, '1024\n');
});

it("capacity on Incus: free disk is the storage pool's, a node's disk is its root's usage, listings are filtered by incusd", async (t) => {
  const client = new IncusClient({ socketPath: SOCKET });
  const node = await client.get<{ config: Record<string, string> }>(`/1.0/instances/${instanceName(a.id, 'node1')}`);
  const provider = new IncusProvider({ client, image: 'unused', instance: node.config[KEY.instance] });
  const pool = await provider.storagePool();
  t.truthy(pool);
  const res = await client.get<{ space: { total: number; used: number } }>(`/1.0/storage-pools/${pool}/resources`);
  const free = await provider.freeDiskBytes();
  t.true(free !== null && free > 0 && free <= res.space.total - res.space.used + 256 * 2 ** 20, `pool free ${free}, resources ${JSON.stringify(res.space)}`);
  // What a learner writes shows in the node's figure once btrfs commits it (sync asks for that).
  const before = await provider.nodeDiskBytes(a.id, 'node1');
  t.true(before !== null && before > 0, `node disk ${before}`);
  await run(a, 'head -c 64M /dev/urandom > ~/capacity-blob && sync');
  try {
    const after = await eventually(
      async () => {
        const now = await provider.nodeDiskBytes(a.id, 'node1');
        return now !== null && now >= (before ?? 0) + 60 * 2 ** 20 ? now : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: "the 64 MiB to show in the node's disk usage" },
    );
    t.log(
      `FIGURE capacity on Incus: pool free ${(free! / 2 ** 30).toFixed(2)} GiB; node disk ${(before! / 2 ** 20).toFixed(1)} MiB, ${(after / 2 ** 20).toFixed(1)} MiB after writing 64 MiB`,
    );
  } finally {
    await run(a, 'rm -f ~/capacity-blob');
  }
  // incusd applies the filter itself: one node back, although this host holds others (B's at least).
  const one = await client.get<string[]>(`/1.0/instances?${filterQuery({ [`config.${KEY.sandbox}`]: a.id, [`config.${KEY.role}`]: 'node' })}`);
  t.deepEqual(one, [`/1.0/instances/${instanceName(a.id, 'node1')}`]);
  t.deepEqual(
    (await provider.instances(a.id)).map((i) => i.name),
    [instanceName(a.id, 'node1')],
  );
  t.true(
    (await provider.list()).some((f) => f.sandboxId === b.id),
    "the server's own sessions are listed",
  );
  t.deepEqual(await new IncusProvider({ client, image: 'unused', instance: `test-${process.pid}` }).list(), [], "another server's are not");
});

it("a new session's subnet avoids every bridge on incusd, another server's included, without listing them recursively", async (t) => {
  const client = new IncusClient({ socketPath: SOCKET });
  const mine = new IncusProvider({ client, image: 'unused', instance: `test-${process.pid}-a` });
  const other = new IncusProvider({ client, image: 'unused', instance: `test-${process.pid}-b` });
  // Another server's bridge, made after this one first looked: it must still be seen on the next allocation.
  await mine.allocateSubnet();
  const taken = await other.allocateSubnet();
  const name = `bt-${process.pid}`.slice(0, 15);
  await client.run('POST', '/1.0/networks', {
    name,
    type: 'bridge',
    config: { 'ipv4.address': `${taken.gateway}/26`, 'ipv4.nat': 'false', 'ipv6.address': 'none' },
  });
  try {
    await mine.allocateSubnet();
    t.is(mine.addresses.get(name), taken.index, "the new bridge's subnet is known");
  } finally {
    await client.run('DELETE', `/1.0/networks/${name}`);
  }
  await mine.allocateSubnet();
  t.false(mine.addresses.has(name), "a deleted bridge's subnet is free again");
});

it('a failed create leaves nothing behind: no instance, no bridge', async (t) => {
  const provider = new IncusProvider({ client: new IncusClient({ socketPath: SOCKET }), image: 'berth-no-such-image', instance: `test-${process.pid}` });
  const err = await t.throwsAsync(
    provider.createSandbox('failprobe0001', ['node1', 'node2'], { memoryBytes: 256 << 20, nanoCpus: 1e9, pids: 256, diskBytes: 0 }),
  );
  t.is((err as ApiError).code, 'SANDBOX_FAILED');
  t.false(/berth-no-such-image|not found/i.test(err!.message), "the daemon's message is not shown");
  t.deepEqual(await provider.list(), []);
  t.false((await new IncusClient({ socketPath: SOCKET }).get<string[]>('/1.0/networks')).some((n) => n.endsWith('/bs-failprobe0001')));
});

it("another session cannot reach a session's node engine (tcp 2375) or the host's API", async (t) => {
  const ip = (await run(sw, 'hostname -i')).stdout.trim();
  t.regex(ip, /^10\.202\.\d+\.\d+$/);
  const port = new URL(s.url).port;
  const r = await run(
    b,
    `gw=$(ip route | awk '/default/ {print $3}'); ` +
      `for target in ${ip}:2375 $gw:${port}; do timeout 5 bash -c "echo > /dev/tcp/\${target%:*}/\${target#*:}" 2>/dev/null && echo "open $target" || echo "closed $target"; done`,
  );
  t.regex(r.stdout, new RegExp(`closed ${ip.replace(/\./g, '\\.')}:2375`), r.stdout);
  t.regex(r.stdout, /closed 10\.202\.\d+\.\d+:\d+\n$/, r.stdout);
  t.notRegex(r.stdout, /open/);
});

it('two learners map to different, non-overlapping host uid ranges', async (t) => {
  const maps = await Promise.all([a, b].map(async (c) => (await run(c, 'cat /proc/self/uid_map')).stdout.trim().split(/\s+/).map(Number)));
  for (const [inside, host, size] of maps) {
    t.is(inside, 0);
    t.true(host >= 65536 && size >= 65536, String(maps));
  }
  const [[, ha, sa], [, hb]] = maps;
  t.true(hb >= ha + sa || ha >= hb + maps[1][2], `A ${ha}+${sa}, B ${hb}`);
});

it("one learner exhausting its kernel key quota does not stop another learner's docker run", async (t) => {
  // Root in a container of node A is node A's root, one host uid: fill that uid's key quota with add_key(2)
  // (Docker's default seccomp profile refuses add_key, so the learner asks for no profile, as it may).
  const fill = [
    'import ctypes, errno, time',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'n = 0',
    'while n < 100000:',
    '    r = libc.syscall(248, b"user", b"k%d" % n, b"x" * 64, 64, -3)',
    '    if r < 0:',
    '        print("stopped", n, errno.errorcode[ctypes.get_errno()], flush=True)',
    '        break',
    '    n += 1',
    'time.sleep(600)',
  ].join('\n');
  const started = await run(
    a,
    `docker run -d --name keys --security-opt seccomp=unconfined python python3 -c '${fill}' >/dev/null && sleep 3 && docker logs keys`,
  );
  t.regex(started.stdout, /stopped \d+ EDQUOT/, started.stdout + started.stderr);
  try {
    // The quota is really spent: A's own next container cannot get its session keyring.
    const own = await run(a, 'docker run --rm busybox true 2>&1; echo "exit=$?"');
    t.regex(own.stdout, /exit=[1-9]/, own.stdout);
    t.regex(own.stdout, /quota/i, own.stdout);
    const other = await run(b, 'docker run --rm busybox echo other-learner-fine');
    t.is(other.exitCode, 0, other.stderr);
    t.is(other.stdout.trim(), 'other-learner-fine');
  } finally {
    await run(a, 'docker rm -f keys >/dev/null 2>&1');
  }
});

// Every node is a user namespace that incusd (root) made, so the kernel counts every node's inotify instances as
// root's on the host, against fs.inotify.max_user_instances: 128 unless the bring-up raised it
// (runtime/incus/host-limits.ts). With 128, A's first process stopped near 128 and B's inotify_init failed.
it("one learner holding every inotify instance it can open leaves another learner's inotify_init working", async (t) => {
  const tag = `ino-${process.pid}`;
  // The node's kernel memory, for the figure only (cgroup v1; NaN elsewhere).
  const kmem = () => {
    try {
      return Number(readFileSync(`/sys/fs/cgroup/memory/lxc.payload.${instanceName(a.id, 'node1')}/memory.kmem.usage_in_bytes`, 'utf8'));
    } catch {
      return Number.NaN;
    }
  };
  const before = kmem();
  try {
    const held = await run(a, holdInotify(tag, { procs: 3, files: 4096 }));
    const counts = held.stdout
      .trim()
      .split('\n')
      .map((l) => /^(\d+) (.+)$/.exec(l));
    t.is(counts.length, 3, held.stdout + held.stderr);
    for (const m of counts) {
      t.is(m?.[2], 'Too many open files', held.stdout);
      // Each stopped at its own open-file limit (4096 less the few files perl holds), not at a count shared with other nodes.
      t.true(Number(m?.[1]) > 4000, held.stdout);
    }
    const total = counts.reduce((n, m) => n + Number(m?.[1]), 0);
    t.log(
      `FIGURE inotify: learner A holds ${total} instances; its node's kernel memory +${((kmem() - before) / 2 ** 20).toFixed(1)} MiB (charged to A's memory limit)`,
    );
    const other = await run(b, openInotify(64));
    t.is(other.stdout, 'ok 64\n', other.stdout + other.stderr);
  } finally {
    await run(a, releaseInotify(tag));
  }
});

// A node of its own: a bomb that reaches the pids limit can leave that node's dockerd without threads for good.
it("a fork bomb stops at its node's process limit (pids.events counts the refusals) while another learner's docker run works", async (t) => {
  const c = await createSession(s);
  const marker = `berth-bomb-${process.pid}`;
  const cgroup = `/sys/fs/cgroup/pids/lxc.payload.${instanceName(c.id, 'node1')}`;
  const pids = (f: string) => readFileSync(joinPath(cgroup, f), 'utf8').trim();
  const refused = () => Number(/^max (\d+)$/m.exec(pids('pids.events'))?.[1]);
  let bomber: number | undefined;
  try {
    t.is(pids('pids.max'), SETTINGS.BERTH_SANDBOX_PIDS, "limits.processes is the node's pids cgroup limit");
    const before = refused();
    t.is((await run(c, forkBomb(marker))).stdout, 'started\n');
    bomber = await eventually(() => hostPidsNamed(marker)[0], { what: 'the fork bomb to be waiting' });
    // The exec that started it has ended: the bomb may now take every process the node has.
    process.kill(bomber, 'SIGUSR1');
    const count = await eventually(
      () => {
        try {
          return readFileSync(`/proc/${bomber}/root/tmp/${marker}.count`, 'utf8').trim();
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 120_000, what: 'the fork bomb to be refused a process' },
    );
    t.regex(count, /^\d+ Resource temporarily unavailable$/);
    t.true(refused() > before, `pids.events: ${pids('pids.events')}`);
    t.log(`FIGURE fork bomb: ${count.split(' ')[0]} children; node pids ${pids('pids.current')} of ${pids('pids.max')}; pids.events ${pids('pids.events')}`);
    const other = await run(b, 'docker run --rm busybox echo other-learner-fine');
    t.is(other.stdout.trim(), 'other-learner-fine', other.stderr);
    t.deepEqual(hostPidsNamed(marker), [bomber], 'the bomb held its processes all along');
  } finally {
    if (bomber && hostPidsNamed(marker).includes(bomber)) process.kill(bomber, 'SIGTERM');
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

it('a terminal on an Incus node: round trip, resize, and the same shell after a reconnect', async (t) => {
  const term = await openTerminal(s.url, b.id, b.token);
  await term.waitFor(/\$ $/);
  t.is(await lineAfter(term, 'echo round-$((40+2))-trip', /\n\r?(round-\S*)\r/), 'round-42-trip');
  term.resize(123, 45);
  t.is(await sizeSeen(term, 123, 45), '45 123');
  t.is(await lineAfter(term, 'export BERTH_MARK=kept-$((6*7)); echo "exported=$BERTH_MARK"', /\n\r?(exported=\S*)\r/), 'exported=kept-42');
  term.close();
  await term.closed;
  const again = await openTerminal(s.url, b.id, b.token);
  t.is(await lineAfter(again, 'echo "mark=$BERTH_MARK"', /\n\r?(mark=\S*)\r/), 'mark=kept-42', 'the same shell after a reconnect');
  again.close();
});

it('Berth answers DNS on the session gateway: the allowed name resolves as on the host, others get NXDOMAIN at once', async (t) => {
  const expected = (await lookup(hostname(), { family: 4 })).address;
  const r = await run(
    b,
    `cat /etc/resolv.conf; getent hosts ${hostname()}; echo "allowed:$?"; t0=$(date +%s%N); getent hosts registry-1.docker.io; echo "other:$? $(( ($(date +%s%N) - t0) / 1000000 ))ms"`,
  );
  const gateway = /^nameserver (\S+)/m.exec(r.stdout)?.[1] ?? '';
  t.regex(gateway, /^10\.202\.\d+\.\d+$/, r.stdout);
  t.regex(r.stdout, new RegExp(`^${expected.replaceAll('.', '\\.')}\\s+${hostname()}$`, 'm'), r.stdout);
  const other = /other:(\d+) (\d+)ms/.exec(r.stdout);
  t.is(other?.[1], '2', r.stdout);
  t.true(Number(other?.[2]) < 2000, `NXDOMAIN took ${other?.[2]} ms`);
});

it("the editor's file API and a port preview reach an Incus node", async (t) => {
  const put = await s.api(`/api/sessions/${b.id}/files?path=site/index.html`, { method: 'PUT', token: b.token, json: { content: '<h1>from incus</h1>' } });
  t.is(put.status, 200, await put.clone().text());
  const got = await s.api(`/api/sessions/${b.id}/files?path=site/index.html`, { token: b.token });
  t.is(((await got.json()) as { content: string }).content, '<h1>from incus</h1>');
  const up = await run(b, 'docker run -d --name web -p 8080:80 -v ~/site:/usr/share/nginx/html:ro nginx >/dev/null && sleep 1 && curl -s localhost:8080');
  t.regex(up.stdout, /from incus/, up.stderr);
  const preview = await s.api(`/p/${b.id}/node1/8080/`, { token: b.token });
  t.is(preview.status, 200);
  t.regex(await preview.text(), /from incus/);
  await run(b, 'docker rm -f web >/dev/null');
});

it('the registry mirror reaches an Incus node on its loopback, read-only; nothing else of the host does', async (t) => {
  const digest =
    "curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://127.0.0.1:65000/v2/library/busybox/manifests/latest | tr -d '\\r' | awk -F': ' 'tolower($1)==\"docker-content-digest\"{print $2}'";
  const before = (await run(b, digest)).stdout.trim();
  t.regex(before, /^sha256:/, 'the mirror serves the catalog through the proxy device');
  const upload = await run(b, "curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:65000/v2/library/busybox/blobs/uploads/");
  t.false(/^2/.test(upload.stdout), `blob upload refused (${upload.stdout})`);
  t.is((await run(b, digest)).stdout.trim(), before);
  // The node's loopback is its own: Berth's port on the host's loopback is not there.
  const api = await run(b, `curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:${new URL(s.url).port}/api/lessons; echo " exit=$?"`);
  t.is(api.stdout.trim(), '000 exit=7', "connection refused on the node's own loopback");
  // Port 5000 is the learner's, for the registry every tutorial runs there (lesson 07).
  const own = await run(
    b,
    "docker run -d --name on5000 -p 5000:80 busybox httpd -f -p 80 >/dev/null && for i in $(seq 1 50); do curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/ && break; sleep 0.1; done; docker rm -f on5000 >/dev/null",
  );
  t.is(own.exitCode, 0, own.stderr);
  t.is(own.stdout.trim(), '404', "the learner's own server answers on localhost:5000 (busybox httpd, no index)");
});

it('a restarted server adopts the Incus sessions a killed one left, engines and files intact', async (t) => {
  await s.stop('SIGKILL');
  s = await startServer(SETTINGS, s.stateDir);
  const r = await run(b, "cat ~/site/index.html; docker info --format '{{.ServerVersion}}'");
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /from incus<\/h1>\n?26\./);
});

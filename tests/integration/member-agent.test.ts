// The member agent (sandbox-server/member/main.ts) as an operator runs it, but inside a network namespace this test
// makes ("the member"), so the host's own rules and sockets are never touched: a sandbox bridge bs-* with a
// gateway address, a second namespace ("a node") on it through a veth pair, a registry stand-in as the Berth
// host's mirror, and a stand-in incusd on a unix socket for the heartbeat (tests/helpers/fake-incusd.ts). The
// member's /etc/hosts (ip netns exec mounts /etc/netns/<ns>/hosts over it) adds a name with a TEST-NET address,
// never contacted, so the firewall's rules can be told from the host's. Needs root; everything made here is
// removed afterwards, also when a test fails.
import test from 'ava';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { INCUSD } from '../../runtime/incus/daemons.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { AGENT_KEY } from '../../sandbox-server/member/heartbeat.ts';
import { FakeIncusd } from '../helpers/fake-incusd.ts';
import { IncusCluster } from '../helpers/incus-cluster.ts';
import { blob } from '../helpers/netns-probe.ts';
import { eventually } from '../helpers/wait.ts';

const root = process.getuid?.() === 0;
const it = root ? test.serial : test.serial.skip;
const repo = join(import.meta.dirname, '..', '..');
const probe = join(repo, 'tests', 'helpers', 'netns-probe.ts');
const tag = String(process.pid % 100_000);
const ns = { member: `bma-m${tag}`, node: `bma-n${tag}` };
const bridges = [`bs-ma${tag}a`, `bs-ma${tag}b`];
const nets = ['10.251.1', '10.251.2'];
const own = `berth-agent-${tag}.test`;
const ports = { mirror: 15_000 + (process.pid % 1000), upstream: 16_000 + (process.pid % 1000) };
const token = `t${process.pid}`;
const netnsDir = `/etc/netns/${ns.member}`;
const madeEtcNetns = !existsSync('/etc/netns');
const dir = mkdtempSync(join(tmpdir(), 'berth-member-it-'));
const madeNs: string[] = [];
const children: ChildProcess[] = [];
const incusd = new FakeIncusd({ name: 'm2' });
let agent: { child: ChildProcess; lines: Record<string, unknown>[]; stderr: string; exit: Promise<number | null> } | undefined;

function sh(args: string[]) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}
const inMember = (...args: string[]) => sh(['ip', 'netns', 'exec', ns.member, ...args]);

/** A probe's one JSON line, run in namespace `where`. */
function run(where: string, ...args: string[]): Record<string, unknown> {
  const out = sh(['ip', 'netns', 'exec', where, process.execPath, probe, ...args]);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}
/** One A query from the node's namespace to the gateway of its bridge. */
const dig = (net: string, name: string) => run(ns.node, 'dns', `${net}.1`, name);

/** The node's eth0 on `bridge`, at .2 of `net` with the bridge's gateway as its route. */
function attachNode(bridge: string, net: string) {
  sh(['ip', '-n', ns.member, 'link', 'set', `vn${tag}`, 'master', bridge, 'up']);
  sh(['ip', '-n', ns.node, 'addr', 'flush', 'dev', 'eth0']);
  sh(['ip', '-n', ns.node, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0']);
  sh(['ip', '-n', ns.node, 'route', 'replace', 'default', 'via', `${net}.1`]);
}

function makeBridge(bridge: string, net: string) {
  sh(['ip', '-n', ns.member, 'link', 'add', bridge, 'type', 'bridge']);
  sh(['ip', '-n', ns.member, 'link', 'set', bridge, 'up']);
  // The address comes after the link, as Incus sets it: the agent must wait for it.
  sh(['ip', '-n', ns.member, 'addr', 'add', `${net}.1/24`, 'dev', bridge]);
}

/** UDP sockets bound to `address`:53 in the member's namespace (the DNS responder's). */
const dnsSockets = (address: string) => inMember('ss', '-Hlun', 'src', `${address}:53`).trim();

function startAgent(env: Record<string, string>, where = ns.member) {
  const child = spawn('ip', ['netns', 'exec', where, process.execPath, join(repo, 'sandbox-server', 'member', 'main.ts')], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout?.on('data', (b: Buffer) => {
    buf += b;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  const a = { child, lines, stderr: '', exit: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
  child.stderr?.on('data', (b: Buffer) => {
    a.stderr += b;
  });
  return a;
}

const logged = (msg: string, a = agent) => a?.lines.find((l) => l.msg === msg);

test.before(async () => {
  if (!root) return;
  await incusd.listen(join(dir, 'incus.socket'));
  if (madeEtcNetns) mkdirSync('/etc/netns');
  mkdirSync(netnsDir);
  writeFileSync(join(netnsDir, 'hosts'), `${readFileSync('/etc/hosts', 'utf8')}\n192.0.2.77 ${own}\n`);
  for (const name of [ns.member, ns.node]) {
    sh(['ip', 'netns', 'add', name]);
    madeNs.push(name);
    sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  }
  sh(['ip', '-n', ns.member, 'link', 'add', `vn${tag}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.node]);
  sh(['ip', '-n', ns.node, 'link', 'set', 'eth0', 'up']);
  makeBridge(bridges[0], nets[0]);
  attachNode(bridges[0], nets[0]);
  // The Berth host's mirror, as the member reaches it (here on the member's own loopback).
  const upstream = spawn('ip', ['netns', 'exec', ns.member, process.execPath, probe, 'serve', String(ports.upstream), token], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(upstream);
  await new Promise<void>((resolve, reject) => {
    upstream.stdout?.once('data', () => resolve());
    upstream.once('exit', (code) => reject(new Error(`the mirror stand-in exited (${code})`)));
  });
  agent = startAgent({
    BERTH_EGRESS_POLICY: 'allowlist',
    BERTH_EGRESS_ALLOW: `${hostname()},${own}`,
    BERTH_MIRROR_PORT: String(ports.mirror),
    BERTH_MIRROR_RELAY: `127.0.0.1:${ports.upstream}`,
    BERTH_INCUS_SOCKET: join(dir, 'incus.socket'),
    LOG_LEVEL: 'info',
  });
  await eventually(() => logged('heartbeat started') ?? (agent?.child.exitCode !== null ? Promise.reject(new Error(agent?.stderr)) : undefined), {
    what: 'the agent to start its four duties',
  });
});

let cluster: IncusCluster | undefined;

test.after.always(async () => {
  const problems = await cluster?.stop();
  if (problems?.length) console.error(`cluster teardown:\n  ${problems.join('\n  ')}`);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // The member's namespace takes its bridges and veth ends with it.
  for (const name of madeNs.reverse()) spawnSync('ip', ['netns', 'del', name]);
  rmSync(netnsDir, { recursive: true, force: true });
  if (madeEtcNetns && existsSync('/etc/netns') && readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
  await incusd.close();
  rmSync(dir, { recursive: true, force: true });
});

it('one log line per duty; the firewall is in the member namespace, not the host', (t) => {
  const duties = agent?.lines.filter((l) => l.duty).map((l) => l.duty);
  t.deepEqual(duties, ['firewall', 'dns', 'mirror', 'heartbeat']);
  t.like(logged('mirror relay listening'), { listen: `127.0.0.1:${ports.mirror}`, upstream: `127.0.0.1:${ports.upstream}` });
  const egress = inMember('iptables', '-w', '5', '-S', 'BERTH-EGRESS');
  t.regex(egress, /-A BERTH-EGRESS -d 192\.0\.2\.77\/32 -p tcp -m multiport --dports 80,443 -j ACCEPT/);
  t.regex(inMember('iptables', '-w', '5', '-S', 'INPUT'), /^-A INPUT -i bs-\+ -j BERTH-INPUT$/m);
  t.regex(inMember('iptables', '-w', '5', '-S', 'FORWARD'), /^-A FORWARD -i bs-\+ -j BERTH-EGRESS$/m);
  const host = spawnSync('iptables', ['-w', '5', '-S'], { encoding: 'utf8' }).stdout;
  t.notRegex(host, /192\.0\.2\.77/, "the host's rules never got the member's");
  // Held in: the node reaches its member neither on the gateway nor through it (RST would mean it got there).
  const r = spawnSync('ip', ['netns', 'exec', ns.node, 'timeout', '20', 'bash', '-c', `exec 3<>/dev/tcp/${nets[0]}.1/9`], { encoding: 'utf8' });
  t.regex(r.stderr, /No route to host/);
});

it('DNS on the gateway: allowed names resolve (their new addresses let through), others NXDOMAIN', async (t) => {
  const a = dig(nets[0], hostname());
  t.is(a.rcode, 0);
  t.true((a.addresses as string[]).length > 0, JSON.stringify(a));
  t.deepEqual(dig(nets[0], `nope-${tag}.invalid`), { rcode: 3, addresses: [] });
  // The allowed name moved since the firewall was applied (a CDN, a new mirror): answered, then let through.
  writeFileSync(join(netnsDir, 'hosts'), `${readFileSync('/etc/hosts', 'utf8')}\n192.0.2.78 ${own}\n`);
  t.deepEqual(dig(nets[0], own), { rcode: 0, addresses: ['192.0.2.78'] });
  const rules = await eventually(
    () => {
      const egress = inMember('iptables', '-w', '5', '-S', 'BERTH-EGRESS');
      return egress.includes('192.0.2.78') ? egress : undefined;
    },
    { what: 'allowAddress(192.0.2.78) in the member namespace' },
  );
  t.regex(rules, /-d 192\.0\.2\.78\/32 .*--dports 80,443 -j ACCEPT/, 'the new address is let through on 80 and 443 only');
});

it('a bridge deleted: its gateway no longer served; a new bridge: served', async (t) => {
  t.not(dnsSockets(`${nets[0]}.1`), '');
  sh(['ip', '-n', ns.member, 'link', 'del', bridges[0]]);
  await eventually(() => (dnsSockets(`${nets[0]}.1`) === '' ? true : undefined), { what: 'the DNS socket on the deleted bridge to close' });
  const line = await eventually(() => logged('DNS responder stopped: the bridge is gone'), { what: 'the log line of the stop' });
  t.like(line, { bridge: bridges[0], gateway: `${nets[0]}.1` });
  makeBridge(bridges[1], nets[1]);
  attachNode(bridges[1], nets[1]);
  const a = await eventually(
    () => {
      const r = dig(nets[1], hostname());
      return r.rcode === 0 ? r : undefined;
    },
    { what: 'an answer on the new bridge' },
  );
  t.true((a.addresses as string[]).length > 0);
  t.deepEqual(dig(nets[1], `nope-${tag}.invalid`), { rcode: 3, addresses: [] });
});

it("the mirror relay pipes to the Berth host's mirror, bytes untouched; the heartbeat says the mirror answers", (t) => {
  const r = run(ns.member, 'http', `http://127.0.0.1:${ports.mirror}/blob`);
  t.deepEqual(r, { status: 200, sha256: createHash('sha256').update(blob()).digest('hex'), token });
  t.is(run(ns.member, 'http', `http://127.0.0.1:${ports.mirror}/v2/`).status, 200);
  const beat = JSON.parse(incusd.key(AGENT_KEY) ?? '{}');
  t.like(beat, { policy: 'allowlist', mirror: true, version: 1 });
  t.true(Math.abs(Date.now() - beat.at) < 60_000, `at ${beat.at}`);
  t.is(incusd.key('user.other'), 'keep me');
});

it('SIGTERM: the heartbeat removed, every socket closed, exit 0; the firewall stays', async (t) => {
  const a = agent!;
  a.child.kill('SIGTERM');
  t.is(await a.exit, 0, a.stderr);
  t.is(incusd.key(AGENT_KEY), undefined);
  t.is(incusd.key('user.other'), 'keep me');
  t.is(dnsSockets(`${nets[1]}.1`), '');
  t.deepEqual(run(ns.member, 'http', `http://127.0.0.1:${ports.mirror}/v2/`).error !== undefined, true);
  t.regex(inMember('iptables', '-w', '5', '-S', 'INPUT'), /-j BERTH-INPUT/);
});

it('bad configuration: exit 2 naming the variable, before anything is applied', async (t) => {
  const bad = startAgent({ BERTH_MIRROR_RELAY: 'http://mirror:5000' });
  t.is(await bad.exit, 2);
  t.regex(bad.stderr, /BERTH_MIRROR_RELAY: host:port/);
});

it('without root (no firewall): exit 2 before any other duty, no heartbeat written', async (t) => {
  const seen = incusd.seen.length;
  const child = spawn(process.execPath, [join(repo, 'sandbox-server', 'member', 'main.ts')], {
    cwd: repo,
    uid: 65534,
    gid: 65534,
    env: { ...process.env, BERTH_EGRESS_ALLOW: hostname(), BERTH_INCUS_SOCKET: join(dir, 'incus.socket') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b;
  });
  const code = await new Promise((r) => child.once('exit', r));
  t.is(code, 2, stderr);
  t.regex(stderr, /the sandbox firewall could not be applied \(not root\)/);
  t.is(incusd.seen.length, seen, 'incusd was not asked anything');
});

// The heartbeat against a real Incus 6.0 (the stand-in above answers as its source reads): a two-member cluster
// formed here (tests/helpers/incus-cluster.ts, no image needed), the agent run in member m2's namespace on m2's
// socket, the value read back through m1.
(root && existsSync(INCUSD) ? test.serial : test.serial.skip)(
  'on a real two-member cluster: m2 writes user.berth.agent, m1 reads it, SIGTERM removes it',
  async (t) => {
    cluster = new IncusCluster(mkdtempSync(join(tmpdir(), 'berth-member-cluster-')), (m) => t.log(m));
    await cluster.start(null, '2GiB');
    const [m1, m2] = cluster.members;
    cluster.incus(m1, ['cluster', 'set', 'm2', 'user.other=keep me']);
    const m1client = new IncusClient({ socketPath: m1.socket });
    type Member = { config: Record<string, string>; roles: string[]; groups: string[]; description: string; failure_domain: string };
    const before = await m1client.get<Member>('/1.0/cluster/members/m2');
    // Incus holds writers to the ETag they read: a stale one is refused, which is why the agent reads again on a 412.
    const stale = await m1client.http('PUT', '/1.0/cluster/members/m2', { body: before, headers: { 'if-match': '"0000"' } });
    t.is(stale.status, 412);
    const a = startAgent({ BERTH_EGRESS_POLICY: 'closed', BERTH_MIRROR_PORT: String(ports.mirror), BERTH_INCUS_SOCKET: m2.socket, LOG_LEVEL: 'info' }, m2.ns);
    await eventually(() => logged('heartbeat started', a) ?? (a.child.exitCode !== null ? Promise.reject(new Error(a.stderr)) : undefined), {
      what: "the agent's first heartbeat on m2",
    });
    t.like(logged('heartbeat started', a), { member: 'm2' });
    const seen = await m1client.get<Member>('/1.0/cluster/members/m2');
    const beat = JSON.parse(seen.config[AGENT_KEY]);
    // Nothing answers as a registry on m2's loopback: mirror false.
    t.like(beat, { policy: 'closed', mirror: false, version: 1 });
    t.true(Math.abs(Date.now() - beat.at) < 60_000);
    const writable = (m: Member) => ({ description: m.description, roles: m.roles, groups: m.groups, failure_domain: m.failure_domain, config: m.config });
    const { [AGENT_KEY]: _, ...rest } = seen.config;
    t.deepEqual(writable({ ...seen, config: rest }), writable(before), 'everything else as it was');
    a.child.kill('SIGTERM');
    t.is(await a.exit, 0, a.stderr);
    const after = await m1client.get<Member>('/1.0/cluster/members/m2');
    t.false(AGENT_KEY in after.config);
    t.is(after.config['user.other'], 'keep me');
  },
);

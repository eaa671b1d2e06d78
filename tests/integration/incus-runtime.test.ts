// The Incus runtime against the real incusd: the bring-up is idempotent and quick when nothing changed; a
// node made from the learner image runs a rootful Docker with working cgroup v1 limits and sees its own
// limits through lxcfs; its network reaches what Berth allows on the host (a proxy device, the DNS port on
// its gateway) and nothing else there; the host engine's default bridge still works next to Incus.
// Everything the test talks to is on this machine: its own bridge, its own servers, the host engine.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureEngine } from '../../runtime/bootstrap/engine.ts';
import { ensureIncus, incusSkipReason } from '../../runtime/incus/up.ts';
import { aptHosts, applyFirewall } from '../../sandbox-server/engine/firewall.ts';
import { isTransient } from '../../sandbox-server/engine/incus/errors.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Runs a command with stdin closed (the incus client reads a YAML config from a stdin that is not a terminal).
 * An `incus exec` that liblxc reports it could not attach ("Failed to retrieve PID of executing child process",
 * the transient failure the provider retries too: engine/incus/errors.ts) is tried again; this file's commands
 * only read.
 */
async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<{ stdout: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runOnce(cmd, args, opts);
    } catch (err) {
      if (attempt >= 3 || !(args[0] === 'exec' && isTransient(err))) throw err;
      await sleep(200 * attempt);
    }
  }
}

function runOnce(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number }): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeout ?? 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b;
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b;
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve({ stdout }) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}: ${stderr.trim()}`)),
    );
  });
}
const skip = incusSkipReason();
const serial = skip ? test.skip : test.serial;
if (skip) console.error(`# incus-runtime: skipped (${skip})`);

const id = randomBytes(4).toString('hex');
const bridge = `bs-it${id}`;
const node = `berth-it-${id}`;
let subnet = '';
let gateway = '';

async function incus(...args: string[]) {
  return (await run('incus', args)).stdout;
}
/** Incus' bridge operations race with veths of other nodes coming and going ("Failed to delete bridge
 * children interfaces … does not exist"); that error is worth a retry, nothing else is. */
async function incusRetrying(...args: string[]) {
  for (let i = 0; ; i++) {
    try {
      return await incus(...args);
    } catch (e) {
      if (i >= 4 || !/bridge children interfaces/.test(String(e))) throw e;
      await sleep(500);
    }
  }
}
/** A command in the node; its stdout, or a rejection carrying stderr. */
async function inNode(script: string, timeout = 60_000) {
  return (await run('incus', ['exec', node, '--', 'bash', '-c', script], { timeout })).stdout;
}

/** A /24 inside 10.209.0.0/16 that no route on this host uses yet. */
function freeSubnet(): string {
  const routes = execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' });
  for (let tries = 0; tries < 50; tries++) {
    const s = `10.209.${Math.floor(Math.random() * 250) + 1}`;
    if (!routes.includes(`${s}.`)) return s;
  }
  throw new Error('no free /24 in 10.209.0.0/16');
}

test.before(async () => {
  if (skip) return;
  subnet = freeSubnet();
  gateway = `${subnet}.1`;
  // The shape the provider gives a session: static addresses, no DHCP and no DNS from Incus (Berth's own
  // responder serves the gateway), no IPv6, and Berth's firewall rather than Incus' per-bridge accepts.
  await incusRetrying(
    'network',
    'create',
    bridge,
    `ipv4.address=${gateway}/24`,
    'ipv4.nat=false',
    'ipv4.dhcp=false',
    'dns.mode=none',
    'ipv6.address=none',
    'ipv4.firewall=false',
  );
  await incus('init', 'berth-learner', node, '-p', 'berth', '-c', 'limits.memory=512MiB', '-c', 'limits.cpu=1', '-c', 'limits.processes=1000');
  await incus(
    'config',
    'device',
    'add',
    node,
    'eth0',
    'nic',
    'nictype=bridged',
    `parent=${bridge}`,
    'name=eth0',
    `ipv4.address=${subnet}.10`,
    'security.ipv4_filtering=true',
    'security.mac_filtering=true',
  );
  const env = join(mkdtempSync(join(tmpdir(), 'berth-it-')), 'node.env');
  writeFileSync(env, `BERTH_NODE=node1\nBERTH_ADDR=${subnet}.10/24\nBERTH_GATEWAY=${gateway}\nBERTH_DNS=${gateway}\n`);
  await incus('file', 'push', env, `${node}/etc/berth/node.env`);
});

test.after.always(async () => {
  if (skip) return;
  await incus('delete', '--force', node).catch(() => {});
  await incusRetrying('network', 'delete', bridge).catch((e) => console.error(`# could not delete ${bridge}: ${e}`));
});

serial('the bring-up finds everything in place and is quick the second time', async (t) => {
  const t0 = performance.now();
  const r = await ensureIncus();
  const seconds = (performance.now() - t0) / 1000;
  t.deepEqual(r.changed, []);
  t.is(r.image, 'berth-learner');
  t.true(seconds < 15, `second bring-up took ${seconds.toFixed(1)} s`);
  t.log(`second bring-up: ${seconds.toFixed(2)} s`);
});

serial('a learner node starts, and its rootful Docker uses cgroupfs v1 with no warnings about limits', async (t) => {
  const t0 = performance.now();
  await incus('start', node);
  // Readiness as the provider reads it: the file API, no exec.
  const ready = await eventually(() => run('incus', ['query', `/1.0/instances/${node}/files?path=/run/berth-ready`]).then(() => true), {
    timeoutMs: 60_000,
    intervalMs: 200,
    what: '/run/berth-ready in the node',
  }).catch(() => false);
  t.true(ready, `no /run/berth-ready after 60 s: ${ready ? '' : await incus('console', node, '--show-log').catch((e) => String(e))}`);
  if (!ready) return;
  t.log(`incus start → engine ready: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  const info = JSON.parse(await inNode("docker info --format '{{json .}}'")) as {
    CgroupDriver: string;
    CgroupVersion: string;
    Driver: string;
    Warnings: string[] | null;
    MemTotal: number;
    NCPU: number;
    ServerVersion: string;
  };
  t.is(info.CgroupDriver, 'cgroupfs');
  t.is(info.CgroupVersion, '1');
  t.is(info.Driver, 'overlay2');
  t.deepEqual(
    (info.Warnings ?? []).filter((w) => /memory|swap|cpu|limit|oom/i.test(w)),
    [],
  );
  t.regex(info.ServerVersion, /^26\./);
  // lxcfs: Docker sees the node's limits, not the host's.
  t.is(info.MemTotal, 512 * 1024 * 1024);
  t.is(info.NCPU, 1);
  // The image's /usr is shared with every node, read-only (one page cache for all nodes' binaries).
  if ((await incus('profile', 'device', 'show', 'berth')).includes('usr:')) {
    t.regex(await inNode('touch /usr/berth-probe 2>&1 || true'), /Read-only file system/);
  }
  const mem = JSON.parse(await incus('query', `/1.0/instances/${node}/state`)) as { memory: { usage: number } };
  t.log(`memory charged to the node once its engine is up: ${(mem.memory.usage / 1048576).toFixed(0)} MiB`);
  // The session's other nodes reach it as tcp://<node>:2375.
  t.is((await inNode(`curl -s --max-time 5 http://${subnet}.10:2375/_ping`)).trim(), 'OK');
  // The learner (uid 1000, group docker) uses it without sudo.
  t.regex(await inNode('setpriv --reuid 1000 --regid 1000 --init-groups docker version --format "{{.Server.Version}}"'), /^26\./);
});

serial('lxcfs: free, nproc and /proc/meminfo in the node show its own limits', async (t) => {
  const [free, nproc, meminfo] = (await inNode("free -b | awk '/^Mem:/ {print $2}'; nproc; grep MemTotal /proc/meminfo")).trim().split('\n');
  t.is(Number(free), 512 * 1024 * 1024);
  t.is(nproc, '1');
  t.regex(meminfo, /MemTotal:\s+524288 kB/);
  // And live: a new limit shows at once.
  await incus('config', 'set', node, 'limits.memory=768MiB');
  t.is(Number((await inNode("free -b | awk '/^Mem:/ {print $2}'")).trim()), 768 * 1024 * 1024);
});

function listen(server: Server, port: number, host: string) {
  server.listen(port, host);
  return once(server, 'listening').then(() => (server.address() as AddressInfo).port);
}

serial('the node reaches a host service through a proxy device and the DNS port on its gateway, and no other host port', async (t) => {
  // Berth's host chains for sandbox bridges (the server applies them at start; a test run may come first).
  if (spawnOk('iptables', ['-S', 'BERTH-INPUT']) === false) await applyFirewall('allowlist', aptHosts());
  const http = createServer((s) => s.end('HTTP/1.0 200 OK\r\ncontent-length: 9\r\n\r\nberth-ok\n'));
  const hostPort = await listen(http, 0, '127.0.0.1');
  const api = createServer((s) => s.end('reached\n'));
  const apiPort = await listen(api, 0, gateway);
  const dns = createSocket('udp4');
  dns.bind(53, gateway);
  await once(dns, 'listening');
  const got = once(dns, 'message');
  try {
    // The mirror's path: a loopback-only host port, reached through an Incus proxy device.
    await incus('config', 'device', 'add', node, 'probe', 'proxy', 'listen=tcp:127.0.0.1:8099', `connect=tcp:127.0.0.1:${hostPort}`, 'bind=instance');
    t.is((await inNode('curl -s --max-time 10 --retry 5 --retry-all-errors http://127.0.0.1:8099/')).trim(), 'berth-ok');
    // Berth's DNS responder listens on the gateway: UDP 53 gets through.
    await inNode(`echo berth-dns > /dev/udp/${gateway}/53`);
    const [msg] = (await Promise.race([got, sleep(10_000).then(() => [Buffer.from('timeout')])])) as [Buffer];
    t.is(msg.toString().trim(), 'berth-dns');
    // Any other port of the host on the gateway address (the Berth API, say) is refused.
    const blocked = await inNode(`curl -s --max-time 5 http://${gateway}:${apiPort}/ && echo reached || echo blocked`);
    t.is(blocked.trim().split('\n').at(-1), 'blocked');
  } finally {
    http.close();
    api.close();
    dns.close();
    await incus('config', 'device', 'remove', node, 'probe').catch(() => {});
  }
});

function spawnOk(cmd: string, args: string[]) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

serial("the host engine's default bridge still works with Incus up", async (t) => {
  t.regex(execFileSync('ip', ['-4', 'addr', 'show', 'docker0'], { encoding: 'utf8' }), /inet \d+\.\d+\.\d+\.\d+\//);
  const host = (await ensureEngine()).host;
  const docker = (...args: string[]) => run('docker', args, { env: { ...process.env, DOCKER_HOST: host }, timeout: 60_000 }).then((r) => r.stdout.trim());
  const web = `berth-it-web-${id}`;
  try {
    await docker(
      'run',
      '-d',
      '--rm',
      '--name',
      web,
      '--network',
      'bridge',
      'busybox',
      'sh',
      '-c',
      'mkdir /w && echo berth-bridge-ok > /w/index.html && httpd -f -p 80 -h /w',
    );
    const ip = await docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', web);
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/);
    // busybox nc, not wget: the static busybox's wget crashes in getaddrinfo without glibc's NSS modules.
    const got = await docker(
      'run',
      '--rm',
      '--network',
      'bridge',
      'busybox',
      'sh',
      '-c',
      `for i in 1 2 3 4 5; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80 | tail -n 1 | grep . && exit 0; sleep 0.5; done; exit 1`,
    );
    t.is(got, 'berth-bridge-ok');
  } finally {
    await docker('rm', '-f', web).catch(() => {});
  }
});

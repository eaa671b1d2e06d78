// The Incus provider through a remote address (BERTH_INCUS_URL): HTTPS with a client certificate and the
// server's certificate pinned, as the incus CLI does it. The "remote" is this host's own incusd, opened on
// loopback for the test (core.https_address 127.0.0.1:<port>) and trusting a client certificate made here;
// both are put back afterwards, whatever happened. No traffic leaves this machine.
// Needs incusd (runtime/incus) with the learner image; without it these tests are skipped, not passed.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../sandbox-server/config.ts';
import { IncusError } from '../../sandbox-server/engine/incus/api.ts';
import { clusterMembers } from '../../sandbox-server/engine/incus/cluster.ts';
import { IncusClient, type IncusRemote } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { makeCert, type CertFiles } from '../helpers/certs.ts';
import { eventually } from '../helpers/wait.ts';

const SOCKET = process.env.BERTH_INCUS_SOCKET ?? '/var/lib/incus/unix.socket';
const it = existsSync(SOCKET) ? test.serial : test.serial.skip;
const ADDRESS_KEY = 'core.https_address';

const local = new IncusClient({ socketPath: SOCKET });
let dir: string;
let before: string | undefined; // core.https_address as the test found it
let opened = false;
let trusted: string | null = null; // fingerprint of the client certificate the test added
let berth: CertFiles;
let stranger: CertFiles;
let serverPem: string;
let url: string;
let remote: IncusClient;
let provider: IncusProvider;
const sessions: string[] = [];
const limits = loadConfig({ BERTH_SANDBOX_MEMORY: '1g', BERTH_SANDBOX_PIDS: '1024', BERTH_SANDBOX_DISK: '4g' }).limits;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
      .listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      })
      .on('error', reject);
  });
}

const derBase64 = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
const remoteWith = (over: Partial<IncusRemote> = {}): IncusRemote => ({ url, clientCert: berth.pem, clientKey: '', serverCert: serverPem, ...over });

test.before(async () => {
  if (!existsSync(SOCKET)) return;
  dir = mkdtempSync(join(tmpdir(), 'berth-incus-remote-'));
  berth = makeCert(dir, 'berth-client');
  stranger = makeCert(dir, 'stranger', 'serverAuth');
  const key = readFileSync(berth.key, 'utf8');
  const server = await local.get<{ config: Record<string, string>; environment: { certificate: string } }>('/1.0');
  before = server.config[ADDRESS_KEY];
  serverPem = server.environment.certificate;
  // Listening already (an operator's setting): use it as it is, on whatever address it names.
  if (!before) {
    const port = await freePort();
    await local.run('PATCH', '/1.0', { config: { [ADDRESS_KEY]: `127.0.0.1:${port}` } });
    opened = true;
    url = `https://127.0.0.1:${port}`;
  } else {
    url = `https://${before.startsWith(':') || before.startsWith('[::]') || before.startsWith('0.0.0.0') ? `127.0.0.1:${before.split(':').at(-1)}` : before}`;
  }
  const name = `berth-test-${berth.fingerprint.slice(0, 12)}`;
  await local.run('POST', '/1.0/certificates', { type: 'client', name, certificate: derBase64(berth.pem) });
  trusted = berth.fingerprint;
  remote = new IncusClient({ remote: { url, clientCert: berth.pem, clientKey: key, serverCert: serverPem } });
  provider = new IncusProvider({ client: remote, image: 'berth-learner', instance: `remote-test-${berth.fingerprint.slice(0, 8)}` });
});

test.after.always(async () => {
  for (const id of sessions) await provider?.removeSandbox(id).catch((err: unknown) => console.error(`removing ${id}: ${(err as Error).message}`));
  remote?.close();
  if (trusted)
    await local
      .run('DELETE', `/1.0/certificates/${trusted}`)
      .catch((err: unknown) => console.error(`untrusting the test certificate: ${(err as Error).message}`));
  // An unset key is put back as unset ("" removes it).
  if (opened) await local.run('PATCH', '/1.0', { config: { [ADDRESS_KEY]: before ?? '' } });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('the pinned server answers over HTTPS to the trusted client certificate', async (t) => {
  const server = await eventually(() => remote.get<{ auth: string; environment: { server_name: string } }>('/1.0'), { what: `incusd on ${url}` });
  t.is(server.auth, 'trusted');
  t.true(remote.remote);
  t.is(await clusterMembers(remote), null, 'a single server');
  // Capacity figures of a remote server come from Incus's resources API, not this host's /proc.
  const [m, ...more] = (await provider.machines()) ?? [];
  t.is(more.length, 0);
  t.is(m?.name, '127.0.0.1');
  t.true(m.cpus >= 1 && m.memoryAvailable > 0 && m.memoryAvailable <= m.memoryTotal, JSON.stringify(m));
  t.true((m.diskFree ?? 0) > 0, "free space in the profile's storage pool");
  t.log(`FIGURE machines() through the URL: ${JSON.stringify(m)}`);
});

it('a session through the URL: two nodes, exec as the learner, node to node, memory from the API, a terminal', async (t) => {
  const id = `rt${Date.now().toString(36)}`;
  sessions.push(id);
  const t0 = performance.now();
  await provider.createSandbox(id, ['node1', 'node2'], limits);
  t.log(`FIGURE create (2 nodes) through https://127.0.0.1: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  t.deepEqual(
    (await provider.list()).map((s) => s.sandboxId),
    [id],
  );
  const opts = { timeoutMs: 60_000, maxOutput: 65536 };
  const r = await provider.run(id, 'node1', "id -un; docker version --format '{{.Server.Version}}'; getent hosts node2 | cut -d' ' -f1", opts);
  t.is(r.exitCode, 0, r.stderr);
  const [user, docker, node2] = r.stdout.trim().split('\n');
  t.is(user, 'learner');
  t.regex(docker, /^\d+\./);
  t.is(node2, (await provider.nodeAddress(id, 'node2')) ?? 'no address');
  // As the lessons do it: node2's engine from node1 (its TCP listener may come up just after the ready file).
  const reach = await provider.run(
    id,
    'node1',
    "for i in $(seq 100); do docker -H tcp://node2:2375 info --format '{{.Name}}' 2>/dev/null && exit; sleep 0.2; done; exit 1",
    opts,
  );
  t.is(reach.stdout.trim(), 'node2', reach.stderr);
  const piped = await provider.run(id, 'node2', 'wc -c', { ...opts, stdin: Buffer.alloc(200_000, 97) });
  t.is(piped.stdout.trim(), '200000', 'stdin crosses the wss socket whole');
  t.true((await provider.nodeMemory(id, 'node1')) > 0, "measured through the API, not this host's cgroups");
  // A figure, not a bound: one short command through each transport, interleaved so load falls on both alike.
  const viaSocket = new IncusProvider({ client: local, image: 'berth-learner', instance: 'unused' });
  const ms: Record<'socket' | 'https', number[]> = { socket: [], https: [] };
  for (let i = 0; i < 10; i++) {
    for (const [kind, p] of [
      ['socket', viaSocket],
      ['https', provider],
    ] as const) {
      const t1 = performance.now();
      await p.run(id, 'node1', 'true', opts);
      ms[kind].push(performance.now() - t1);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1].toFixed(0);
  t.log(`FIGURE exec 'true' as the learner, median of 10: ${median(ms.socket)} ms on the unix socket, ${median(ms.https)} ms over https (kept-alive TLS)`);

  const { stream, resize } = await provider.openTty(id, 'node1', ['bash', '--noprofile', '--norc'], { cols: 80, rows: 24 });
  let seen = '';
  stream.on('data', (b: Buffer) => {
    seen += b.toString('utf8');
  });
  await resize(100, 30);
  stream.write('stty size; echo "tty-$((6 * 7))"\r');
  await eventually(() => (seen.includes('tty-42') ? true : undefined), {
    timeoutMs: 60_000,
    what: `the terminal's echo (seen: ${JSON.stringify(seen.slice(-200))})`,
  });
  t.regex(seen, /30 100/, 'the resize reached the pty through the control socket');
  const ended = new Promise((resolve) => stream.once('end', resolve));
  stream.write('exit\r');
  await ended;
  stream.destroy();
});

it('a wrong pinned server certificate is refused before anything is sent; an untrusted client gets no access', async (t) => {
  const wrong = new IncusClient({ remote: remoteWith({ serverCert: stranger.pem }) });
  try {
    const err = await t.throwsAsync(wrong.get('/1.0/instances'));
    t.is((err as { code?: string }).code, 'DEPTH_ZERO_SELF_SIGNED_CERT', err!.message);
  } finally {
    wrong.close();
  }
  // The right pin with a certificate incusd does not trust: TLS completes, the API refuses.
  const untrusted = new IncusClient({ remote: remoteWith({ clientCert: stranger.pem, clientKey: readFileSync(stranger.key, 'utf8') }) });
  try {
    t.is((await untrusted.get<{ auth: string }>('/1.0')).auth, 'untrusted');
    const err = await t.throwsAsync(untrusted.get('/1.0/instances'), { instanceOf: IncusError });
    t.is((err as IncusError).status, 403);
  } finally {
    untrusted.close();
  }
});

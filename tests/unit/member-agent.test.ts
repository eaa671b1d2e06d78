// The member agent's parts that need no root and no namespace (sandbox-server/member/): its heartbeat against a
// stand-in incusd on a unix socket (tests/helpers/fake-incusd.ts: GET with an ETag, PUT with If-Match, 412 on a
// stale one, as Incus 6.0 answers), the bridge watch with the kernel's view given to it, and its configuration.
// The agent process itself, in a network namespace: tests/integration/member-agent.test.ts.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadMemberConfig } from '../../sandbox-server/config.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { BridgeWatch, parseIpAddr } from '../../sandbox-server/member/bridges.ts';
import { AGENT_KEY, Heartbeat, setMemberKey } from '../../sandbox-server/member/heartbeat.ts';
import { MirrorRelay, mirrorAnswers } from '../../sandbox-server/member/relay.ts';
import { FakeIncusd } from '../helpers/fake-incusd.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-member-'));
let n = 0;
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in incusd on a socket of its own, and a client of it. */
async function incusd(opts: ConstructorParameters<typeof FakeIncusd>[0] = {}) {
  const fake = new FakeIncusd(opts);
  const socket = join(dir, `incus-${n++}.socket`);
  await fake.listen(socket);
  return { fake, client: new IncusClient({ socketPath: socket }) };
}

const logs = () => {
  const lines: { level: string; msg: string; o: object }[] = [];
  const at = (level: string) => (o: object, msg: string) => lines.push({ level, msg, o });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
};

test('the first beat is a PUT of the whole member with If-Match, every other field and key kept', async (t) => {
  const { fake, client } = await incusd();
  t.teardown(() => fake.close());
  const { log } = logs();
  const hb = new Heartbeat({ client, policy: 'allowlist', mirror: async () => true, now: () => 1_700_000_000_000, intervalMs: 3_600_000, log });
  t.true(await hb.start());
  t.teardown(() => hb.stop());
  t.is(hb.member, 'm2');
  t.deepEqual(
    fake.seen.map((s) => `${s.method} ${s.path}`),
    ['GET /1.0', 'GET /1.0/cluster/members/m2', 'PUT /1.0/cluster/members/m2'],
  );
  const put = fake.seen[2];
  t.regex(put.ifMatch ?? '', /^"[0-9a-f]{64}"$/, 'the ETag of the GET, as sent back');
  t.deepEqual(put.body, {
    config: { 'scheduler.instance': 'all', 'user.other': 'keep me', [AGENT_KEY]: '{"at":1700000000000,"policy":"allowlist","mirror":true,"version":1}' },
    description: 'second machine',
    roles: ['database'],
    failure_domain: 'rack-2',
    groups: ['default'],
  });
  t.deepEqual(JSON.parse(fake.key(AGENT_KEY) ?? '{}'), { at: 1_700_000_000_000, policy: 'allowlist', mirror: true, version: 1 });
});

test('a 412 (another writer between GET and PUT) is met by reading again: their change and the beat both stay', async (t) => {
  const { fake, client } = await incusd();
  t.teardown(() => fake.close());
  fake.interfere = (m) => {
    m.config['user.theirs'] = 'written meanwhile';
  };
  await setMemberKey(client, 'm2', AGENT_KEY, '{"x":1}');
  const puts = fake.seen.filter((s) => s.method === 'PUT');
  t.is(puts.length, 2);
  t.not(puts[0].ifMatch, puts[1].ifMatch);
  t.deepEqual(fake.member.config, { 'scheduler.instance': 'all', 'user.other': 'keep me', 'user.theirs': 'written meanwhile', [AGENT_KEY]: '{"x":1}' });
});

test('a member that keeps changing ends in the 412 after the last attempt, not a loop', async (t) => {
  const { fake, client } = await incusd();
  t.teardown(() => fake.close());
  const again = () => {
    fake.interfere = (m) => {
      m.config['user.flap'] = String(Math.random());
      again();
    };
  };
  again();
  await t.throwsAsync(setMemberKey(client, 'm2', AGENT_KEY, 'v', { attempts: 3 }), { message: /ETag doesn't match/ });
  t.is(fake.seen.filter((s) => s.method === 'PUT').length, 3);
});

test('stop removes the key only, and no beat follows it', async (t) => {
  const { fake, client } = await incusd();
  t.teardown(() => fake.close());
  const { log } = logs();
  let clock = 1000;
  const hb = new Heartbeat({ client, policy: 'closed', mirror: async () => false, now: () => clock, intervalMs: 3_600_000, log });
  await hb.start();
  t.is(JSON.parse(fake.key(AGENT_KEY) ?? '{}').at, 1000);
  // The next beat replaces the value: its time moves on.
  clock = 2000;
  await hb.beat();
  t.deepEqual(JSON.parse(fake.key(AGENT_KEY) ?? '{}'), { at: 2000, policy: 'closed', mirror: false, version: 1 });
  await hb.stop();
  t.is(fake.key(AGENT_KEY), undefined);
  t.deepEqual(fake.member.config, { 'scheduler.instance': 'all', 'user.other': 'keep me' });
  t.deepEqual(fake.member.groups, ['default']);
  const after = fake.seen.length;
  await hb.beat();
  t.is(fake.seen.length, after, 'nothing written after stop');
  const last = fake.seen[fake.seen.length - 1];
  t.is(last.method, 'PUT');
  t.false(AGENT_KEY in (last.body as { config: object }).config);
});

test('a standalone incusd: no member to write, start says so and asks nothing more', async (t) => {
  const { fake, client } = await incusd({ clustered: false });
  t.teardown(() => fake.close());
  const { log } = logs();
  const hb = new Heartbeat({ client, policy: 'allowlist', mirror: async () => true, log });
  t.false(await hb.start());
  await hb.stop();
  t.deepEqual(
    fake.seen.map((s) => `${s.method} ${s.path}`),
    ['GET /1.0'],
  );
});

test('incusd absent at start: logged once, the beat is written once it answers', async (t) => {
  const socket = join(dir, `late-${n++}.socket`);
  const client = new IncusClient({ socketPath: socket });
  const { lines, log } = logs();
  const hb = new Heartbeat({ client, policy: 'allowlist', mirror: async () => true, intervalMs: 3_600_000, log });
  t.true(await hb.start());
  t.teardown(() => hb.stop());
  await hb.beat();
  t.is(lines.filter((l) => l.level === 'error').length, 1, 'one error line for a run of failures');
  t.is(hb.last, null);
  const fake = new FakeIncusd();
  await fake.listen(socket);
  t.teardown(() => fake.close());
  await hb.beat();
  t.is(hb.member, 'm2');
  t.is(JSON.parse(fake.key(AGENT_KEY) ?? '{}').policy, 'allowlist');
  t.true(lines.some((l) => l.msg === 'heartbeat written again'));
});

test('stop with incusd gone: a warning, not a throw', async (t) => {
  const { fake, client } = await incusd();
  const { lines, log } = logs();
  const hb = new Heartbeat({ client, policy: 'allowlist', mirror: async () => true, intervalMs: 3_600_000, log });
  await hb.start();
  await fake.close();
  await t.notThrowsAsync(hb.stop());
  t.true(lines.some((l) => l.level === 'warn' && /could not remove/.test(l.msg)));
});

test('parseIpAddr: the first IPv4 address of each interface', (t) => {
  const json = JSON.stringify([
    { ifname: 'bs-a', addr_info: [{ family: 'inet', local: '10.202.0.1', prefixlen: 26 }] },
    { ifname: 'bs-b', addr_info: [] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.4' }] },
  ]);
  t.deepEqual(
    [...parseIpAddr(json)],
    [
      ['bs-a', '10.202.0.1'],
      ['eth0', '192.0.2.4'],
    ],
  );
});

test('BridgeWatch: a bridge served once it has an address, let go when it goes or is made again, retried a while after serving failed', async (t) => {
  let links = new Map<string, string>();
  let addrs = new Map<string, string>();
  let ipRuns = 0;
  let refuse = false;
  let clock = 0;
  const events: string[] = [];
  const w = new BridgeWatch({
    list: () => links,
    addresses: async () => {
      ipRuns++;
      return addrs;
    },
    onUp: async (b, g) => {
      events.push(`${refuse ? 'refused' : 'up'} ${b} ${g}`);
      return !refuse;
    },
    onDown: (b, g) => events.push(`down ${b} ${g}`),
    intervalMs: 3_600_000,
    retryMs: 30_000,
    now: () => clock,
  });
  await w.start();
  t.teardown(() => w.stop());
  t.is(ipRuns, 0, 'no bridge: no `ip` run');
  links = new Map([['bs-a', '7']]);
  await w.tick();
  t.deepEqual(events, [], 'no address yet');
  addrs = new Map([['bs-a', '10.202.0.1']]);
  await w.tick();
  t.deepEqual(events, ['up bs-a 10.202.0.1']);
  const runs = ipRuns;
  await w.tick();
  t.is(ipRuns, runs, 'nothing changed: only the readdir');
  // Deleted and made again under its name (a new ifindex) with another subnet.
  links = new Map([['bs-a', '9']]);
  addrs = new Map([['bs-a', '10.202.0.65']]);
  await w.tick();
  t.deepEqual(events.slice(1), ['down bs-a 10.202.0.1', 'up bs-a 10.202.0.65']);
  refuse = true;
  links = new Map([
    ['bs-a', '9'],
    ['bs-b', '11'],
  ]);
  addrs.set('bs-b', '10.202.0.129');
  await w.tick();
  refuse = false;
  // A gateway that could not be served is tried again after retryMs, not every tick.
  clock += 29_000;
  await w.tick();
  t.deepEqual(events.slice(3), ['refused bs-b 10.202.0.129']);
  clock += 1000;
  await w.tick();
  t.deepEqual(events.slice(3), ['refused bs-b 10.202.0.129', 'up bs-b 10.202.0.129']);
  links = new Map([['bs-b', '11']]);
  await w.tick();
  t.deepEqual(events.slice(5), ['down bs-a 10.202.0.65']);
  t.deepEqual([...w.bridges], [['bs-b', '10.202.0.129']]);
  await w.stop();
  t.deepEqual(events.slice(6), ['down bs-b 10.202.0.129']);
});

test('loadMemberConfig: the shared settings as the server parses them, the relay as host:port, bad values named', (t) => {
  const c = loadMemberConfig({
    BERTH_EGRESS_POLICY: 'closed',
    BERTH_MIRROR_RELAY: '[fd00::5]:5000',
    BERTH_MIRROR_PORT: '5001',
    BERTH_EGRESS_ALLOW: 'a.example, b.example',
  });
  t.deepEqual(
    { policy: c.egressPolicy, allow: c.egressAllow, relay: c.mirrorRelay, port: c.mirrorPort, socket: c.incusSocket },
    { policy: 'closed', allow: ['a.example', 'b.example'], relay: { host: 'fd00::5', port: 5000 }, port: 5001, socket: '/var/lib/incus/unix.socket' },
  );
  t.is(loadMemberConfig({}).mirrorRelay, null);
  const wrongForm = t.throws(() => loadMemberConfig({ BERTH_MIRROR_RELAY: 'http://berth:5000' }), {
    instanceOf: ConfigError,
    message: /BERTH_MIRROR_RELAY: host:port/,
  });
  t.notRegex(wrongForm.message, /a port from/, 'one message for one wrong value');
  t.throws(() => loadMemberConfig({ BERTH_MIRROR_RELAY: 'berth:70000' }), { instanceOf: ConfigError, message: /BERTH_MIRROR_RELAY: a port from 1 to 65535/ });
  t.throws(() => loadMemberConfig({ BERTH_MIRROR_RELAY: '127.0.0.1:5000' }), {
    instanceOf: ConfigError,
    message: /BERTH_MIRROR_RELAY: the relay itself listens/,
  });
  t.throws(() => loadMemberConfig({ BERTH_EGRESS_POLICY: 'some' }), { instanceOf: ConfigError, message: /BERTH_EGRESS_POLICY/ });
  // The runtime's pull-through registry on the Berth host is no relay target; a host:port there was meant as one.
  t.is(loadMemberConfig({ BERTH_MIRROR_UPSTREAM: 'https://registry-1.docker.io' }).mirrorRelay, null);
  t.throws(() => loadMemberConfig({ BERTH_MIRROR_UPSTREAM: 'berth:5000' }), {
    instanceOf: ConfigError,
    message: /BERTH_MIRROR_UPSTREAM: .*BERTH_MIRROR_RELAY=host:port/,
  });
  // The server's own settings are not the agent's business: a bad one does not stop it.
  t.notThrows(() => loadMemberConfig({ PORT: 'not a port' }));
  // On the Berth host: the mirror offered to the members on the cluster network; never with a relay of its own.
  t.deepEqual(loadMemberConfig({ BERTH_MIRROR_OFFER: '10.0.0.1:5000' }).mirrorOffer, { host: '10.0.0.1', port: 5000 });
  t.is(loadMemberConfig({}).mirrorOffer, null);
  t.throws(() => loadMemberConfig({ BERTH_MIRROR_OFFER: '10.0.0.1:5000', BERTH_MIRROR_RELAY: '10.0.0.1:5000' }), {
    instanceOf: ConfigError,
    message: /BERTH_MIRROR_OFFER: only on the Berth host/,
  });
});

test('the offer: a relay listening on the address given, piping to the mirror on loopback', async (t) => {
  const mirror = createServer((c) => c.end('registry here'));
  await new Promise<void>((r) => mirror.listen({ host: '127.0.0.1', port: 0 }, r));
  const offer = new MirrorRelay({ host: '127.0.0.2', port: 0, to: { host: '127.0.0.1', port: (mirror.address() as AddressInfo).port } });
  await offer.start();
  try {
    const got = await new Promise<string>((resolve, reject) => {
      const c = connect({ host: '127.0.0.2', port: offer.boundPort! });
      let text = '';
      c.on('data', (b) => {
        text += b.toString();
      });
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    t.is(got, 'registry here');
  } finally {
    await offer.stop();
    mirror.close();
  }
});

/** A server on an ephemeral loopback port; its port. */
async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

/** Sends `data` through a connection to `port`, half-closes, and resolves with everything that came back. */
function exchange(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('end', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
    s.end(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('MirrorRelay: bytes both ways untouched, an upstream that closes after sending still delivers all of it', async (t) => {
  // The upstream reads the whole request, then answers with its hash and 4 MiB of its own, and closes.
  const reply = randomBytes(4 << 20);
  const upstream = createServer((s) => {
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('end', () => s.end(Buffer.concat([Buffer.from(sha(Buffer.concat(got))), reply])));
  });
  const upPort = await listen(upstream);
  t.teardown(() => upstream.close());
  const relay = new MirrorRelay({ port: 0, to: { host: '127.0.0.1', port: upPort } });
  await relay.start();
  t.teardown(() => relay.stop());
  const request = randomBytes(3 << 20);
  const back = await exchange(relay.boundPort!, request);
  t.is(back.subarray(0, 64).toString(), sha(request));
  t.is(sha(back.subarray(64)), sha(reply));
});

test('MirrorRelay: an upstream that refuses ends the node side at once and is reported with its address', async (t) => {
  const closed = createServer();
  const deadPort = await listen(closed);
  await new Promise<void>((r) => closed.close(() => r()));
  const errors: Error[] = [];
  const relay = new MirrorRelay({ port: 0, to: { host: '127.0.0.1', port: deadPort }, onError: (e) => errors.push(e) });
  await relay.start();
  t.teardown(() => relay.stop());
  t.is((await exchange(relay.boundPort!, Buffer.from('GET /v2/ HTTP/1.1\r\n\r\n'))).length, 0);
  t.regex(errors[0]?.message ?? '', new RegExp(`mirror relay: 127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`));
});

test('MirrorRelay: a port already taken is refused at start', async (t) => {
  const other = createServer();
  const port = await listen(other);
  t.teardown(() => other.close());
  await t.throwsAsync(new MirrorRelay({ port, to: { host: '127.0.0.1', port: 1 } }).start(), { code: 'EADDRINUSE' });
});

test('mirrorAnswers: a registry answers /v2/ with 200 or 401; anything else, or nothing, is no mirror', async (t) => {
  let status = 200;
  const paths: string[] = [];
  const registry = createHttpServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status).end('{}');
  });
  const port = await listen(registry);
  t.teardown(() => registry.close());
  t.true(await mirrorAnswers(port));
  status = 401;
  t.true(await mirrorAnswers(port));
  status = 404;
  t.false(await mirrorAnswers(port));
  t.deepEqual(paths, ['/v2/', '/v2/', '/v2/']);
  await new Promise<void>((r) => registry.close(() => r()));
  t.false(await mirrorAnswers(port));
});

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { type Env, refuseLargeBodies } from '../../sandbox-server/app.ts';
import { bearer, hashToken, newToken, tokenFromProtocols, tokenMatches } from '../../sandbox-server/auth.ts';
import { ConfigError, loadConfig, parseBytes } from '../../sandbox-server/config.ts';
import { aptHosts, bridgeRules, rules } from '../../sandbox-server/engine/firewall.ts';
import { RateLimiter } from '../../sandbox-server/rate-limit.ts';
import { withDefaults } from '../../sandbox-server/engine/provider.ts';
import { hostHasIpvs, sandboxFacts } from '../../sandbox-server/sandbox-facts.ts';
import { packFiles } from '../../sandbox-server/sandboxes/tar.ts';

test('tokens: 256 random bits, stored as hashes, compared in constant time', (t) => {
  const a = newToken();
  t.is(Buffer.from(a, 'base64url').length, 32);
  t.not(a, newToken());
  t.true(tokenMatches(a, hashToken(a)));
  t.false(tokenMatches(newToken(), hashToken(a)));
  t.false(tokenMatches(undefined, hashToken(a)));
  t.is(bearer(`Bearer ${a}`), a);
  t.is(bearer('Basic abc'), undefined);
  t.is(tokenFromProtocols(`berth.v1, bearer.${a}`), a);
});

test('config: defaults, sizes, and errors that name the variable', (t) => {
  const c = loadConfig({});
  t.is(c.port, 3000);
  t.is(c.limits.memoryBytes, 2 * 1024 ** 3);
  t.is(parseBytes('512m'), 512 * 1024 ** 2);
  const err = t.throws(() => loadConfig({ PORT: 'eighty', BERTH_SANDBOX_MEMORY: 'lots' }), { instanceOf: ConfigError });
  t.regex(err!.message, /PORT: .*\(eighty\)/);
  t.regex(err!.message, /BERTH_SANDBOX_MEMORY: .*\(lots\)/);
});

test('rate limiter allows the limit per window and then refuses', (t) => {
  let now = 0;
  const r = new RateLimiter(2, 1000, () => now);
  t.deepEqual([r.allow('a'), r.allow('a'), r.allow('a'), r.allow('b')], [true, true, false, true]);
  now = 1000;
  t.true(r.allow('a'));
});

test('seed archives extract with tar, owned by uid 1000, and refuse traversal', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tar-'));
  writeFileSync(
    join(dir, 'a.tar'),
    packFiles([
      { path: 'site/index.html', content: Buffer.from('<h1>hi</h1>') },
      { path: 'top.txt', content: Buffer.alloc(700, 'x') },
    ]),
  );
  const list = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
  t.regex(list, /1000\/1000 .* site\/index\.html/);
  execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
  t.is(readFileSync(join(dir, 'site', 'index.html'), 'utf8'), '<h1>hi</h1>');
  t.is(readFileSync(join(dir, 'top.txt'), 'utf8').length, 700);
  t.throws(() => packFiles([{ path: '../escape', content: Buffer.from('x') }]));
});

test("firewall rules: allow-list ends in a reject; open accepts; another session's bridge and host input are rejected", (t) => {
  const allow = rules('allowlist', ['192.0.2.80']);
  const egress = allow.find((r) => r.chain === 'BERTH-EGRESS')!.rules;
  t.deepEqual(egress.at(-1), ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  t.true(egress.some((r) => r.includes('192.0.2.80') && r.includes('80,443')));
  t.deepEqual(
    rules('open', [])
      .find((r) => r.chain === 'BERTH-EGRESS')!
      .rules.at(-1),
    ['-j', 'ACCEPT'],
  );
  // Routed into another sandbox bridge is rejected before any allowed egress; bridged (same bridge) is accepted ahead of the chain.
  const cross = egress.findIndex((r) => r.join(' ') === '-o bs-+ -j REJECT --reject-with icmp-admin-prohibited');
  t.true(cross >= 0 && cross < egress.findIndex((r) => r.includes('192.0.2.80')));
  t.true(bridgeRules.some((r) => r.join(' ') === '-i bs-+ -m physdev --physdev-is-bridged -j ACCEPT'));
  t.false(
    rules('closed', ['192.0.2.80'])
      .find((r) => r.chain === 'BERTH-EGRESS')!
      .rules.some((r) => r.includes('192.0.2.80')),
  );
  t.deepEqual(allow.find((r) => r.chain === 'BERTH-INPUT')!.rules.at(-1), ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  // Berth's DNS responder on the gateways is the one host service sandboxes reach, unless egress is open.
  const dnsIn = (p: 'allowlist' | 'open' | 'closed') =>
    rules(p, [])
      .find((r) => r.chain === 'BERTH-INPUT')!
      .rules.some((r) => r.join(' ') === '-p udp --dport 53 -j ACCEPT');
  t.true(dnsIn('allowlist'));
  t.true(dnsIn('closed'));
  t.false(dnsIn('open'));
  const apt = mkdtempSync(join(tmpdir(), 'berth-apt-'));
  writeFileSync(join(apt, 'sources.list'), 'deb http://mirror.example/debian bookworm main\n# deb http://commented.example/x bookworm main\n');
  t.deepEqual(aptHosts(apt), ['mirror.example']);
});

test('sandbox facts: the provider names the engine and /proc/net/ip_vs says IPVS', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-procnet-'));
  t.false(hostHasIpvs(dir));
  writeFileSync(join(dir, 'ip_vs'), '');
  t.true(hostHasIpvs(dir));
  t.deepEqual(sandboxFacts('docker', false), { engine: 'rootless', ipvs: 'no' });
  t.deepEqual(sandboxFacts('incus', true), { engine: 'rootful', ipvs: 'yes' });
});

test("providers' options over their defaults: undefined takes the default, null and false are kept", (t) => {
  const o = withDefaults(
    { image: 'x', dns: undefined as string | null | undefined, port: null as number | null, on: false },
    { dns: 'd', port: 5000, on: true, pool: 0 },
  );
  t.deepEqual(o, { image: 'x', dns: 'd', port: null, on: false, pool: 0 });
});

test('a body over the limit is read and dropped before the 413, announced or chunked, so a client still sending is not cut off', async (t) => {
  // The server's refusal behind @hono/node-server, as main.ts serves it. Answered at once, the socket closed under a
  // client still sending: its next writes fail (EPIPE, a reset) and a browser or fetch() reports a failed
  // connection instead of the 413.
  const app = new Hono<Env>();
  let counted = 0;
  app.put(
    '/',
    refuseLargeBodies(1024, () => counted++),
    async (c) => c.text(`accepted ${(await c.req.text()).length}`),
  );
  const server = createServer(getRequestListener(app.fetch));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  // A client on a slow link: 2 MB in 100 kB pieces over about 1.5 s, announced or chunked; the answer read to the end.
  const slowPut = (chunked: boolean) =>
    new Promise<{ answer: string; sentBefore: number; writeErrors: string[] }>((ok) => {
      const sock = connect(port, '127.0.0.1');
      let answer = '';
      let sent = 0;
      let sentBefore = -1;
      const writeErrors: string[] = [];
      sock.on('data', (b) => {
        if (sentBefore < 0) sentBefore = sent;
        answer += b;
      });
      sock.on('error', (err) => writeErrors.push(err.message));
      sock.on('close', () => ok({ answer, sentBefore, writeErrors }));
      const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${20 * 100_000}`;
      sock.write(`PUT / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n${framing}\r\n\r\n`);
      const piece = 'x'.repeat(100_000);
      const timer = setInterval(() => {
        if (sock.destroyed) return clearInterval(timer);
        const last = ++sent === 20;
        const data = chunked ? `${piece.length.toString(16)}\r\n${piece}\r\n${last ? '0\r\n\r\n' : ''}` : piece;
        sock.write(data, (err) => err && writeErrors.push(err.message));
        if (last) clearInterval(timer);
      }, 75);
    });
  try {
    for (const chunked of [false, true]) {
      const how = chunked ? 'chunked' : 'announced';
      const r = await slowPut(chunked);
      t.deepEqual(r.writeErrors, [], `${how}: every piece of the body was taken`);
      t.is(r.sentBefore, 20, `${how}: the answer came once the whole body was sent`);
      t.regex(r.answer, /^HTTP\/1\.1 413 /, how);
      t.regex(r.answer, /"code":"BODY_TOO_LARGE"/, how);
      t.regex(r.answer, /\r\nconnection: close\r\n/i, how);
    }
    t.is(counted, 2);
    // Bodies within the limit reach the route whole, announced or streamed (chunked).
    t.is(await (await fetch(`http://127.0.0.1:${port}/`, { method: 'PUT', body: 'small' })).text(), 'accepted 5');
    const stream = new ReadableStream({
      start(ctl) {
        for (const part of ['sm', 'all', '!']) ctl.enqueue(new TextEncoder().encode(part));
        ctl.close();
      },
    });
    const streamed = await fetch(`http://127.0.0.1:${port}/`, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
    t.is(await streamed.text(), 'accepted 6');
  } finally {
    server.close();
  }
});

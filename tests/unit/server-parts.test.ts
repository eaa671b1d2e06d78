import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

// Pure parts of the Incus bring-up and of the sandbox firewall as Incus bridges need it.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jumps, rules } from '../../sandbox-server/engine/firewall.ts';
import { securityMirror } from '../../runtime/incus/image.ts';
import { debianCodename } from '../../runtime/incus/packages.ts';
import { poolSize, profileYaml } from '../../runtime/incus/preseed.ts';

const GiB = 1024 ** 3;

test('firewall: another session is rejected before any policy lets traffic out; same-bridge traffic passes', (t) => {
  for (const policy of ['open', 'allowlist', 'closed'] as const) {
    const egress = rules(policy, ['192.0.2.80']).find((r) => r.chain === 'BERTH-EGRESS')!.rules.map((r) => r.join(' '));
    const bridged = egress.indexOf('-m physdev --physdev-is-bridged -j RETURN');
    const crossSession = egress.indexOf('-o bs-+ -j REJECT --reject-with icmp-admin-prohibited');
    t.true(bridged >= 0 && crossSession > bridged, policy);
    // The first rule that lets traffic out of the sandbox bridges comes after the cross-session reject.
    const firstOut = egress.findIndex((r, i) => i > bridged && r.endsWith('-j RETURN'));
    t.true(firstOut === -1 || firstOut > crossSession, policy);
  }
  const ingress = rules('open', []).find((r) => r.chain === 'BERTH-INGRESS')!.rules;
  t.deepEqual(ingress.at(-1), ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  t.deepEqual(jumps('FORWARD').map((j) => j[0]), ['INPUT', 'FORWARD', 'FORWARD']);
  t.true(jumps('DOCKER-USER')[2].join(' ').startsWith('DOCKER-USER ! -i bs-+ -o bs-+'));
});

test('pool size: half the free space, capped, and a clear shortfall when the host is short', (t) => {
  t.is(poolSize(78 * GiB), 39 * GiB);
  t.is(poolSize(1000 * GiB), 200 * GiB);
  t.is(poolSize(100 * GiB, 20), 20 * GiB);
  const short = t.throws(() => poolSize(10 * GiB));
  t.regex(short.message, /needs 8 GiB.*10\.0 GiB free; free another 6\.0 GiB/);
  t.regex(t.throws(() => poolSize(10 * GiB, 12)).message, /needs 12 GiB.*free another 3\.0 GiB or lower BERTH_INCUS_POOL_SIZE/);
});

test('profile: the four security settings and a root disk on the pool', (t) => {
  const y = profileYaml('p1');
  for (const k of ['security.nesting', 'security.idmap.isolated', 'security.syscalls.intercept.mknod', 'security.syscalls.intercept.setxattr']) t.regex(y, new RegExp(`${k}: "true"`));
  t.regex(y, /root:\n {4}path: \/\n {4}pool: p1\n {4}type: disk/);
});

test('host facts: the Debian codename and the security archive come from the host files', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'berth-apt-'));
  writeFileSync(join(d, 'os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n');
  t.is(debianCodename(join(d, 'os-release')), 'bookworm');
  t.is(debianCodename(join(d, 'missing')), null);
  writeFileSync(join(d, 'sources.list'), 'deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian-security bookworm-security main\n');
  t.is(securityMirror(d), 'http://mirror.example/debian-security');
});

// Pure parts of the Incus bring-up: pool sizing, the profile, host facts.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonEnv } from '../../runtime/bootstrap/daemon-env.ts';
import { logGist } from '../../runtime/incus/daemons.ts';
import { liftSharedCounts } from '../../runtime/incus/host-limits.ts';
import { securityMirror } from '../../runtime/incus/image.ts';
import { mkdirSync, readFileSync } from 'node:fs';
import { debianCodename, ensureBackportsSource } from '../../runtime/incus/packages.ts';
import { poolSize, profileYaml } from '../../runtime/incus/preseed.ts';

const GiB = 1024 ** 3;

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
  for (const k of ['security.nesting', 'security.idmap.isolated', 'security.syscalls.intercept.mknod', 'security.syscalls.intercept.setxattr'])
    t.regex(y, new RegExp(`${k}: "true"`));
  t.regex(y, /root:\n {4}path: \/\n {4}pool: p1\n {4}type: disk/);
  t.notRegex(y, /usr:/);
  // With a shared /usr: read-only and idmapped (shift) for the node's own id range.
  t.regex(profileYaml('p1', '/srv/usr-1'), /usr:\n {4}path: \/usr\n {4}readonly: "true"\n {4}shift: "true"\n {4}source: \/srv\/usr-1\n {4}type: disk/);
});

test('host facts: the Debian codename and the security archive come from the host files', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'berth-apt-'));
  writeFileSync(join(d, 'os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n');
  t.is(debianCodename(join(d, 'os-release')), 'bookworm');
  t.is(debianCodename(join(d, 'missing')), null);
  writeFileSync(join(d, 'sources.list'), 'deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian-security bookworm-security main\n');
  t.is(securityMirror(d), 'http://mirror.example/debian-security');
});

test('bookworm-backports is added once, on the mirror the host already uses', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'berth-apt-'));
  mkdirSync(join(d, 'sources.list.d'));
  writeFileSync(
    join(d, 'sources.list.d', 'debian.sources'),
    'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n',
  );
  t.true(ensureBackportsSource(() => {}, d).added);
  const written = readFileSync(join(d, 'sources.list.d', 'berth-bookworm-backports.sources'), 'utf8');
  t.regex(written, /URIs: http:\/\/mirror\.example\/debian\nSuites: bookworm-backports\n/);
  t.false(ensureBackportsSource(() => {}, d).added);
});

test('BERTH_INCUS=0 skips Incus with a reason, whatever the host', async (t) => {
  const { incusSkipReason } = await import('../../runtime/incus/up.ts');
  t.is(incusSkipReason({ BERTH_INCUS: '0' }), 'BERTH_INCUS=0');
});

test("a dead daemon's log gist leads with the Go panic that killed it, not only the stack's last frames", (t) => {
  const log = [
    'time="…" level=warning msg="AppArmor support has been disabled"',
    'panic: runtime error: index out of range [1] with length 1',
    '',
    'goroutine 1 [running]:',
    'github.com/lxc/incus/internal/server/firewall/drivers.Nftables.hostVersion({})',
    ...Array.from({ length: 20 }, (_, i) => `\tframe ${i}`),
    'main.main()',
  ].join('\n');
  const gist = logGist(log);
  t.regex(gist.split('\n')[0], /^panic: runtime error: index out of range/);
  t.true(gist.includes('Nftables.hostVersion'));
  t.true(gist.endsWith('main.main()'));
  t.is(logGist('level=error msg="Failed to start the daemon" err="x"\nlast'), 'level=error msg="Failed to start the daemon" err="x"\n…\nlast');
  t.is(logGist('one\ntwo'), 'one\ntwo');
});

test("daemons get a PATH without npm's node_modules/.bin (where @vercel/nft shadows the system's nft)", (t) => {
  const env = daemonEnv({
    PATH: '/w/node_modules/.bin:/node_modules/.bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:/opt/x/bin:/usr/bin:/bin',
    HOME: '/root',
  });
  t.is(env.HOME, '/root');
  t.deepEqual(env.PATH!.split(':'), ['/opt/x/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/sbin']);
});

test('shared kernel counts: raised to the target, never lowered, a missing one reported and not fatal', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'berth-sysctl-'));
  mkdirSync(join(root, 'fs', 'inotify'), { recursive: true });
  writeFileSync(join(root, 'fs', 'inotify', 'max_user_instances'), '128\n');
  writeFileSync(join(root, 'fs', 'file-max'), '9223372036854775807\n');
  const said: string[] = [];
  const r = liftSharedCounts({
    root,
    log: (m) => said.push(m),
    counts: [
      { sysctl: 'fs.inotify.max_user_instances', target: 2147483647n, why: '' },
      { sysctl: 'fs.file-max', target: 1000n, why: '' },
      { sysctl: 'user.max_uts_namespaces', target: 2147483647n, why: '' },
    ],
  });
  t.deepEqual(r.raised, [{ sysctl: 'fs.inotify.max_user_instances', from: '128', to: '2147483647' }]);
  t.is(readFileSync(join(root, 'fs', 'inotify', 'max_user_instances'), 'utf8'), '2147483647\n');
  t.deepEqual(r.kept, [{ sysctl: 'fs.file-max', value: '9223372036854775807' }], 'a higher value (past 2^53 too) is left as it is');
  t.deepEqual(
    r.failed.map((f) => [f.sysctl, f.reason]),
    [['user.max_uts_namespaces', 'ENOENT']],
  );
  t.regex(said.join('\n'), /raised shared kernel counts: fs\.inotify\.max_user_instances 128 → 2147483647/);
  t.regex(said.join('\n'), /could not raise .*user\.max_uts_namespaces: ENOENT/);
});

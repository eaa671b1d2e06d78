// What lessons rely on inside a learner engine: pulls through the mirror, RUN steps in docker build, published ports.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSession, engineHost, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';

let s: TestServer;
test.before(async () => {
  s = await startServer();
});
test.after.always(async () => {
  await s?.stop();
});

test('docker pull nginx through the mirror, a build with RUN steps, and a published port all work in a sandbox', async (t) => {
  await withSession(s, {}, async (c) => {
    const pull = await exec(s, c, 'docker pull nginx', { timeoutMs: 120_000 });
    t.is(pull.exitCode, 0, pull.stderr);
    // A build whose RUN steps execute in the nested engine, from catalog images only (apt: the next test).
    const build = await exec(
      s,
      c,
      'printf "FROM python\\nRUN python3 -m venv /opt/v && /opt/v/bin/python -c \\"print(6*7)\\" > /answer\\nCMD [\\"cat\\", \\"/answer\\"]\\n" | docker build -q -t answer - && docker run --rm answer',
      { timeoutMs: 300_000 },
    );
    t.is(build.exitCode, 0, build.stderr);
    t.is(build.stdout.trim().split('\n').at(-1), '42');
    const web = await exec(s, c, 'docker run -d -p 8080:80 httpd >/dev/null && curl -s --retry 10 --retry-all-errors http://localhost:8080', {
      timeoutMs: 120_000,
    });
    t.regex(web.stdout, /It works!/);
  });
});

/** A flat apt repository holding one package, built here with dpkg-deb: what `apt-get install` will fetch. */
function aptRepo() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-apt-repo-'));
  const pkg = join(dir, 'pkg');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr', 'bin'), { recursive: true });
  const control =
    'Package: berth-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Berth tests <tests@berth.invalid>\nDescription: prints a greeting from a local apt repository\n';
  writeFileSync(join(pkg, 'DEBIAN', 'control'), control);
  writeFileSync(join(pkg, 'usr', 'bin', 'berth-hello'), '#!/bin/sh\necho "hello from the local apt repository"\n');
  chmodSync(join(pkg, 'usr', 'bin', 'berth-hello'), 0o755);
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  const deb = 'berth-hello_1.0_all.deb';
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(repo, deb)], { stdio: 'ignore' });
  const bytes = readFileSync(join(repo, deb));
  const hash = (alg: string, b: Buffer | string) => createHash(alg).update(b).digest('hex');
  const packages = `${control}Filename: ./${deb}\nSize: ${bytes.length}\nMD5sum: ${hash('md5', bytes)}\nSHA256: ${hash('sha256', bytes)}\n\n`;
  writeFileSync(join(repo, 'Packages'), packages);
  writeFileSync(
    join(repo, 'Release'),
    `Origin: berth-tests\nLabel: berth-tests\nDate: ${new Date().toUTCString()}\nSHA256:\n ${hash('sha256', packages)} ${Buffer.byteLength(packages)} Packages\n`,
  );
  return { dir, repo };
}

test('a Dockerfile with RUN apt-get install builds in a sandbox (from an apt repository the test serves on the sandbox network)', async (t) => {
  const docker = (args: string[]) => execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' }).trim();
  const host = await engineHost();
  const { dir, repo } = aptRepo();
  const c = await createSession(s);
  const server = `berth-test-aptrepo-${randomBytes(4).toString('hex')}`;
  try {
    // Served by busybox httpd on the sandbox's own bridge, as the mirror is: the nested build reaches it by
    // name through the sandbox's DNS, and nothing leaves this machine.
    docker(['create', '--name', server, '--network', `berth-net-${c.id}`, '--network-alias', 'aptrepo', 'busybox', 'httpd', '-f', '-p', '8080', '-h', '/repo']);
    docker(['cp', repo, `${server}:/repo`]);
    docker(['start', server]);
    const dockerfile = [
      'FROM debian:12',
      'RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && echo "deb [trusted=yes] http://aptrepo:8080 ./" > /etc/apt/sources.list.d/local.list && apt-get update && apt-get install -y berth-hello',
      'CMD ["berth-hello"]',
    ].join('\n');
    const r = await exec(
      s,
      c,
      `mkdir -p apt-demo && printf '%s\\n' '${dockerfile.replaceAll("'", "'\\''").replaceAll('\n', "' '")}' > apt-demo/Dockerfile && docker build -t apt-demo apt-demo && docker run --rm apt-demo`,
      { timeoutMs: 300_000 },
    );
    t.is(r.exitCode, 0, r.stdout.slice(-2000) + r.stderr);
    t.regex(r.stdout, /Setting up berth-hello \(1\.0\)/);
    t.is(r.stdout.trim().split('\n').at(-1), 'hello from the local apt repository');
  } finally {
    try {
      docker(['rm', '-f', server]);
    } catch {
      /* never created */
    }
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
    rmSync(dir, { recursive: true, force: true });
  }
});

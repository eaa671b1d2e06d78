// The escape suite: every case in escape-cases.ts, from the learner's shell and from a --privileged
// container the learner starts with the node's / mounted, must not print ESCAPED.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CASES, fill } from './escape-cases.ts';
import { createSession, engineHost, exec, startServer, type Created, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let learner: Created;
let other: Created;
let vars: Record<string, string>;
const marker = `berth-escape-marker-${randomBytes(6).toString('hex')}`;

const hostDocker = async (args: string[], input?: Buffer) =>
  execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: await engineHost() }, input, encoding: 'utf8', maxBuffer: 64 << 20 });

test.before(async () => {
  writeFileSync(`/tmp/${marker}`, 'host only\n');
  s = await startServer();
  learner = await createSession(s);
  other = await createSession(s);
  // A busybox image with every applet, imported into the learner's engine from the host's busybox-static.
  const tar = execFileSync('bash', ['-c', 'd=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/; for a in $(/bin/busybox --list); do [ -e $d/bin/$a ] || ln -s busybox $d/bin/$a; done; tar -C $d -c .; rm -rf $d'], { maxBuffer: 64 << 20 });
  await hostDocker(['exec', '-i', '-u', 'learner', `berth-${learner.id}-node1`, 'bash', '-lc', 'docker import - escape-box >/dev/null'], tar);
  const net = (id: string, f: string) => hostDocker(['inspect', '-f', `{{range .NetworkSettings.Networks}}{{.${f}}}{{end}}`, `berth-${id}-node1`]).then((x) => x.trim());
  const root = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')?.split(' ').at(-2) ?? '/dev/vda';
  vars = {
    marker, hosthostname: hostname(), serverport: String(s.port),
    gateway: await net(learner.id, 'Gateway'), otherip: await net(other.id, 'IPAddress'),
    hostsock: (await engineHost()).replace('unix://', ''),
    rootdev: root.replace('/dev/', ''),
  };
});

test.after.always(async () => {
  rmSync(`/tmp/${marker}`, { force: true });
  for (const c of [learner, other]) if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s?.stop();
});

for (const c of CASES) {
  test.serial(`${c.id}: ${c.technique} — from the learner's shell`, async (t) => {
    const r = await exec(s, learner, fill(c.script, vars), { timeoutMs: 60_000 });
    t.false(r.stdout.includes('ESCAPED'), r.stdout);
    t.not(r.exitCode, 124);
  });
  test.serial(`${c.id}: ${c.technique} — from a --privileged container`, async (t) => {
    const b64 = Buffer.from(fill(c.script, vars)).toString('base64');
    const r = await exec(s, learner,
      `echo ${b64} | base64 -d > /tmp/case.sh && docker run --rm --privileged -v /:/host -v /tmp/case.sh:/case.sh:ro escape-box sh /case.sh`,
      { timeoutMs: 60_000 });
    t.false(r.stdout.includes('ESCAPED'), r.stdout);
    // The privileged container itself must have started: otherwise the case proved nothing.
    t.false(/Error response from daemon|OCI runtime/.test(r.stderr), r.stderr);
  });
}

test.serial('the host is unchanged after the suite', async (t) => {
  t.not(readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim(), '|/tmp/pwn');
  // This kernel is built without modules, so kernel.modprobe may not exist at all.
  if (existsSync('/proc/sys/kernel/modprobe')) t.not(readFileSync('/proc/sys/kernel/modprobe', 'utf8').trim(), '/tmp/pwn');
  t.not(readFileSync('/proc/sys/kernel/panic', 'utf8').trim(), '7');
  t.is(readFileSync(`/tmp/${marker}`, 'utf8'), 'host only\n');
});

// The escape suite, for any provider: every case in escape-cases.ts, from the learner's shell and from a
// --privileged container the learner starts with the node's / mounted, must not print ESCAPED.
// Everything it needs from inside a node it gets as a learner would, through Berth's API (exec), so the
// same suite holds the Docker provider and the Incus provider to the same boundary.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CASES, fill } from './escape-cases.ts';
import { nodeMemoryLimit, providerNodes, type ProviderName, type ProviderNodes } from '../helpers/provider-nodes.ts';
import { createSession, engineHost, exec, startServer, type Created, type TestServer } from '../helpers/server.ts';

export type SuiteOptions = {
  /** Server settings (BERTH_PROVIDER and the provider's own). */
  settings?: Record<string, string>;
  /** Why the provider cannot run here, or null: the suite is then skipped, not passed. */
  unavailable?: string | null;
  /**
   * On Incus the learner's docker group makes them root of their own node, as on any Docker host, so the
   * cases about the node's own root (its /etc/shadow, setuid files, uid 0) are not a boundary there; the
   * host boundary is. On the Docker provider the node's root is not the learner's, and those cases hold.
   */
  learnerOwnsNode?: boolean;
};

/** Device:inode of every socket on the host a learner must never reach: the same file seen from inside
 *  a node has the same pair, whatever path it is mounted at, so a node's own /var/run/docker.sock is told
 *  apart from the host's even when both have that path. */
function hostSocketIds(hostSock: string): string {
  const paths = [hostSock, '/var/run/docker.sock', '/run/containerd/containerd.sock', '/var/lib/incus/unix.socket', '/var/lib/incus/unix.socket.user'];
  return [
    ...new Set(
      paths
        .filter((p) => existsSync(p))
        .map((p) => statSync(p))
        .filter((s) => s.isSocket())
        .map((s) => `${s.dev}:${s.ino}`),
    ),
  ].join(' ');
}

/** The MAC addresses of the host's own interfaces (loopback aside), as a regex alternation. */
function hostMacs(): string {
  const macs = readdirSync('/sys/class/net')
    .map((n) => {
      try {
        return readFileSync(`/sys/class/net/${n}/address`, 'utf8').trim();
      } catch {
        return '';
      }
    })
    .filter((m) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m) && m !== '00:00:00:00:00:00');
  return [...new Set(macs)].join('|') || 'no-host-mac';
}

/** /proc/net/route's little-endian hex gateway as a dotted quad. */
const dotted = (hex: string) =>
  hex
    .match(/../g)!
    .reverse()
    .map((b) => parseInt(b, 16))
    .join('.');

export function escapeSuite(opts: SuiteOptions = {}) {
  const serial = opts.unavailable ? test.serial.skip : test.serial;
  let s: TestServer;
  let learner: Created;
  let other: Created;
  let vars: Record<string, string>;
  let nodeLimit = '';
  let nodes: ProviderNodes;
  const marker = `berth-escape-marker-${randomBytes(6).toString('hex')}`;

  const run = async (c: Created, cmd: string) => {
    const r = await exec(s, c, cmd, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stderr}`);
    return r.stdout.trim();
  };

  test.before(async () => {
    if (opts.unavailable) return;
    writeFileSync(`/tmp/${marker}`, 'host only\n');
    s = await startServer(opts.settings ?? {});
    learner = await createSession(s);
    other = await createSession(s);
    nodes = providerNodes((opts.settings?.BERTH_PROVIDER ?? 'docker') as ProviderName, await engineHost());
    nodeLimit = nodeMemoryLimit(await nodes.nodePid(learner.id, 'node1'));
    // The catalog's busybox has every applet; the privileged cases run in it, from the learner's engine.
    await run(learner, 'docker pull -q busybox >/dev/null && docker tag busybox escape-box');
    const gateway = dotted(await run(learner, `awk '$2=="00000000" {print $3; exit}' /proc/net/route`));
    const otherip = await run(other, `ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1`);
    const root =
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/')
        ?.split(' ')
        .at(-2) ?? '/dev/vda';
    const hostsock = (await engineHost()).replace('unix://', '');
    vars = {
      marker,
      hosthostname: hostname(),
      serverport: String(s.port),
      gateway,
      otherip,
      hostsock,
      hostsockids: hostSocketIds(hostsock),
      hostmacs: hostMacs(),
      rootdev: root.replace('/dev/', ''),
    };
  });

  test.after.always(async () => {
    rmSync(`/tmp/${marker}`, { force: true });
    for (const c of [learner, other]) if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
    await s?.stop();
  });

  for (const c of CASES) {
    const it = c.boundary === 'node' && opts.learnerOwnsNode ? test.serial.skip : serial;
    it(`${c.id}: ${c.technique} — from the learner's shell`, async (t) => {
      // Every case may run twice (an attempt that failed once fails again), which lets the server retry it.
      const r = await exec(s, learner, fill(c.script, vars), { timeoutMs: 60_000 });
      t.false(r.stdout.includes('ESCAPED'), r.stdout);
      t.not(r.exitCode, 124);
    });
    it(`${c.id}: ${c.technique} — from a --privileged container`, async (t) => {
      const b64 = Buffer.from(fill(c.script, vars)).toString('base64');
      const r = await exec(
        s,
        learner,
        `echo ${b64} | base64 -d > /tmp/case.sh && docker run --rm --privileged -v /:/host -v /tmp/case.sh:/case.sh:ro escape-box sh /case.sh`,
        { timeoutMs: 60_000 },
      );
      t.false(r.stdout.includes('ESCAPED'), r.stdout);
      // The privileged container itself must have started: otherwise the case proved nothing.
      t.false(/Error response from daemon|OCI runtime/.test(r.stderr), r.stderr);
    });
  }

  serial('the host is unchanged after the suite', async (t) => {
    t.not(readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim(), '|/tmp/pwn');
    // This kernel is built without modules, so kernel.modprobe may not exist at all.
    if (existsSync('/proc/sys/kernel/modprobe')) t.not(readFileSync('/proc/sys/kernel/modprobe', 'utf8').trim(), '/tmp/pwn');
    t.not(readFileSync('/proc/sys/kernel/panic', 'utf8').trim(), '7');
    t.is(readFileSync(`/tmp/${marker}`, 'utf8'), 'host only\n');
    // The limit Berth set on the learner's node, as the kernel enforces it, seen from the host.
    t.true(/^\d+$/.test(nodeLimit) && Number(nodeLimit) < 2 ** 62, `a real limit: ${nodeLimit}`);
    t.is(nodeMemoryLimit(await nodes.nodePid(learner.id, 'node1')), nodeLimit);
  });

  // The identity checks must be able to fail: the host's own socket and interfaces match themselves.
  serial("the identity checks recognise the host's own socket and interfaces", (t) => {
    const sock = vars.hostsock;
    t.true(vars.hostsockids.split(' ').includes(`${statSync(sock).dev}:${statSync(sock).ino}`));
    const out = execFileSync('sh', ['-c', fill(CASES.find((c) => c.id === 'host-netdev')!.script, vars)], { encoding: 'utf8' });
    t.true(out.includes('ESCAPED'), 'the host-netdev case, run on the host itself, sees the host');
    const sockOut = execFileSync('sh', ['-c', fill(CASES.find((c) => c.id === 'host-docker-sock')!.script, vars)], { encoding: 'utf8' });
    t.true(sockOut.includes(`ESCAPED ${sock}`), sockOut);
  });
}

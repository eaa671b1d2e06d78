// The sandbox firewall (sandbox-server/engine/firewall.ts) in a network namespace of its own, so the host's
// rules are never touched: a "host" namespace with two sandbox bridges (bs-*), one sandbox namespace on the
// first with a neighbour, one on the second. Without DOCKER-USER the rules go to the top of FORWARD; with it,
// into it. Traffic decides: a refused connection (RST: the packet got through) against "No route to host"
// (the firewall's icmp-admin-prohibited). Needs root; every namespace is deleted afterwards.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { applyFirewall } from '../../sandbox-server/engine/firewall.ts';

const root = process.getuid?.() === 0;
const it = root ? test.serial : test.serial.skip;
const tag = String(process.pid % 100_000);
const ns = { host: `bfw-h${tag}`, a: `bfw-a${tag}`, a2: `bfw-c${tag}`, b: `bfw-b${tag}` };
const made: string[] = [];

function sh(args: string[]) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}
const inNs = (name: string, ...args: string[]) => sh(['ip', 'netns', 'exec', name, ...args]);
const iptables = (...args: string[]) => inNs(ns.host, 'iptables', '-w', '5', ...args);

/** A sandbox namespace with eth0 on `bridge` of the host namespace at `addr` (the bridge is .1). */
function sandbox(name: string, bridge: string, veth: string, addr: string) {
  sh(['ip', 'netns', 'add', name]);
  made.push(name);
  sh(['ip', '-n', ns.host, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  sh(['ip', '-n', ns.host, 'link', 'set', veth, 'master', bridge, 'up']);
  sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', name, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
  sh(['ip', '-n', name, 'route', 'add', 'default', 'via', addr.replace(/\d+$/, '1')]);
}

/** Connects from a namespace to a port nothing listens on: "refused" (it got there) or "no route" (the firewall said no). */
function reach(from: string, ip: string): string {
  const r = spawnSync('ip', ['netns', 'exec', from, 'timeout', '20', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/9`], { encoding: 'utf8', timeout: 30_000 });
  if (/Connection refused/.test(r.stderr)) return 'refused';
  if (/No route to host/.test(r.stderr)) return 'no route';
  return `other: ${r.status} ${r.stderr.trim()}`;
}

test.before(() => {
  if (!root) return;
  sh(['ip', 'netns', 'add', ns.host]);
  made.push(ns.host);
  sh(['ip', '-n', ns.host, 'link', 'set', 'lo', 'up']);
  for (const [bridge, cidr] of [
    ['bs-fwa', '10.250.1.1/24'],
    ['bs-fwb', '10.250.2.1/24'],
  ]) {
    sh(['ip', '-n', ns.host, 'link', 'add', bridge, 'type', 'bridge']);
    sh(['ip', '-n', ns.host, 'addr', 'add', cidr, 'dev', bridge]);
    sh(['ip', '-n', ns.host, 'link', 'set', bridge, 'up']);
  }
  inNs(ns.host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  sandbox(ns.a, 'bs-fwa', 'va', '10.250.1.2');
  sandbox(ns.a2, 'bs-fwa', 'vc', '10.250.1.3');
  sandbox(ns.b, 'bs-fwb', 'vb', '10.250.2.2');
});

test.after.always(() => {
  // The host namespace takes its bridges and veth ends with it; each sandbox namespace goes by name.
  for (const name of made.reverse()) spawnSync('ip', ['netns', 'del', name]);
});

const apply = () => applyFirewall('allowlist', ['localhost'], { iptables: ['ip', 'netns', 'exec', ns.host, 'iptables'] });

it('without DOCKER-USER the rules go to the top of FORWARD, hold sandboxes in, and a second apply changes nothing', async (t) => {
  // Before: everything routes (a refused connection means the packet reached its target).
  t.deepEqual([reach(ns.a, '10.250.2.2'), reach(ns.a, '10.250.1.1'), reach(ns.a, '10.250.1.3')], ['refused', 'refused', 'refused']);
  const r = await apply();
  t.deepEqual(r, { enforced: true, allowed: ['127.0.0.1'], forward: 'FORWARD' });
  const forward = iptables('-S', 'FORWARD').trim().split('\n');
  t.deepEqual(forward, [
    '-P FORWARD ACCEPT',
    '-A FORWARD -i bs-+ -m physdev --physdev-is-bridged -j ACCEPT',
    '-A FORWARD -o bs-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A FORWARD -i bs-+ -j BERTH-EGRESS',
  ]);
  t.regex(
    iptables('-S', 'BERTH-EGRESS'),
    /-A BERTH-EGRESS -d 127\.0\.0\.1\/32 -p tcp -m multiport --dports 80,443 -j ACCEPT\n-A BERTH-EGRESS -j REJECT --reject-with icmp-admin-prohibited\n$/,
  );
  t.regex(iptables('-S', 'INPUT'), /^-A INPUT -i bs-\+ -j BERTH-INPUT$/m);
  // Another session's bridge and the host itself: refused by the firewall. The same bridge: still open.
  t.is(reach(ns.a, '10.250.2.2'), 'no route');
  t.is(reach(ns.b, '10.250.1.2'), 'no route');
  t.is(reach(ns.a, '10.250.1.1'), 'no route');
  t.is(reach(ns.a, '10.250.1.3'), 'refused');
  const before = iptables('-S');
  await apply();
  t.is(iptables('-S'), before);
});

it("with DOCKER-USER the rules go there, ahead of Docker's own chains, and FORWARD keeps only Docker's jump", async (t) => {
  // A fresh start: what a host whose Docker made DOCKER-USER looks like.
  for (const chain of ['FORWARD', 'INPUT']) iptables('-F', chain);
  for (const chain of ['BERTH-EGRESS', 'BERTH-INPUT']) {
    iptables('-F', chain);
    iptables('-X', chain);
  }
  iptables('-N', 'DOCKER-USER');
  iptables('-A', 'FORWARD', '-j', 'DOCKER-USER');
  t.is(reach(ns.a, '10.250.2.2'), 'refused');
  const r = await apply();
  t.is(r.forward, 'DOCKER-USER');
  t.is(iptables('-S', 'FORWARD').trim(), '-P FORWARD ACCEPT\n-A FORWARD -j DOCKER-USER');
  t.deepEqual(iptables('-S', 'DOCKER-USER').trim().split('\n').slice(1), [
    '-A DOCKER-USER -i bs-+ -m physdev --physdev-is-bridged -j ACCEPT',
    '-A DOCKER-USER -o bs-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A DOCKER-USER -i bs-+ -j BERTH-EGRESS',
  ]);
  t.is(reach(ns.a, '10.250.2.2'), 'no route');
  t.is(reach(ns.a, '10.250.1.3'), 'refused');
});

it('an iptables that cannot run is reported, not thrown', async (t) => {
  const r = await applyFirewall('closed', [], { iptables: ['ip', 'netns', 'exec', `bfw-missing${tag}`, 'iptables'] });
  t.false(r.enforced);
  t.regex(r.reason ?? '', /iptables cannot list FORWARD/);
});

// Network boundaries of a sandbox: the host and other sandboxes are unreachable, egress follows the policy.
// Every target here is on this machine: the test's own server, its own sandboxes, the engine's bridges.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { createSession, engineHost, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';

let s: TestServer;
// The allow-list names this machine's own host name: it resolves from the host's /etc/hosts, so no lookup
// in this file leaves the machine.
test.before(async () => {
  s = await startServer({ BERTH_EGRESS_ALLOW: hostname() });
});
test.after.always(async () => {
  await s?.stop();
});

const inspect = async (id: string, fmt: string) =>
  execFileSync('docker', ['inspect', '-f', fmt, `berth-${id}-node1`], { env: { ...process.env, DOCKER_HOST: await engineHost() }, encoding: 'utf8' }).trim();

test.serial('a learner cannot reach the host (Berth API on the gateway address) or another sandbox', async (t) => {
  const a = await createSession(s);
  const b = await createSession(s);
  try {
    const gateway = await inspect(a.id, '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}');
    const bIp = await inspect(b.id, '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}');
    t.regex(gateway, /^\d+\.\d+\.\d+\.\d+$/);
    // Control: from the host, b's engine API port answers, so a refusal below is the boundary, not a dead port.
    const fromHost = execFileSync('curl', ['-s', '-m', '3', `http://${bIp}:2375/_ping`], { encoding: 'utf8' });
    t.is(fromHost, 'OK');
    const r = await exec(
      s,
      a,
      [
        `curl -s -m 3 -o /dev/null -w '%{http_code}' http://${gateway}:${s.port}/healthz; echo " host:$?"`,
        `curl -s -m 3 http://${bIp}:2375/_ping; echo " other:$?"`,
        `timeout 10 docker -H tcp://${bIp}:2375 ps >/dev/null 2>&1; echo "docker-other:$?"`,
      ].join('; '),
      { timeoutMs: 30_000 },
    );
    t.regex(r.stdout, /host:(7|28)\b/, `the host's API port must not answer: ${r.stdout}`);
    t.regex(r.stdout, /other:(7|28)\b/, `another sandbox must not answer: ${r.stdout}`);
    t.regex(r.stdout, /docker-other:(1|124)\b/, 'docker -H at another sandbox fails or times out');
    t.false(r.stdout.includes('OK'));
  } finally {
    for (const c of [a, b]) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

test.serial('egress policy: the firewall chains are in place with an allow-list that ends in a reject', (t) => {
  const rules = execFileSync('iptables', ['-S', 'BERTH-EGRESS'], { encoding: 'utf8' }).trim().split('\n');
  t.regex(rules.at(-1)!, /-j REJECT/);
  for (const r of rules.slice(1, -1)) t.regex(r, /ESTABLISHED|-o bs-\+ -j REJECT|--dports 80,443 -j ACCEPT/, r);
  t.regex(execFileSync('iptables', ['-S', 'DOCKER-USER'], { encoding: 'utf8' }), /-i bs-\+ -j BERTH-EGRESS/);
  t.regex(execFileSync('iptables', ['-S', 'INPUT'], { encoding: 'utf8' }), /-i bs-\+ -j BERTH-INPUT/);
  t.regex(execFileSync('iptables', ['-S', 'BERTH-INPUT'], { encoding: 'utf8' }), /-A BERTH-INPUT -j REJECT/);
});

const dnsAnswers = async () => {
  const text = await (await s.api('/metrics')).text();
  const count = (answer: string) => Number(new RegExp(`berth_sandbox_dns_queries_total\\{answer="${answer}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  return { allowed: count('allowed'), refused: count('refused') };
};

test.serial('sandbox DNS: Berth answers on the gateway; allowed names resolve as on the host, others get NXDOMAIN', async (t) => {
  await withSession(s, {}, async (a) => {
    const gateway = await inspect(a.id, '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}');
    t.is(await inspect(a.id, '{{json .HostConfig.Dns}}'), JSON.stringify([gateway]));
    const expected = (await lookup(hostname(), { family: 4 })).address;
    const before = await dnsAnswers();
    const r = await exec(s, a, `getent hosts ${hostname()}; echo "allowed:$?"; getent hosts registry-1.docker.io; echo "other:$?"`);
    t.regex(r.stdout, new RegExp(`^${expected.replaceAll('.', '\\.')}\\s+${hostname()}$`, 'm'), r.stdout);
    t.regex(r.stdout, /other:2\b/, 'a name off the allow-list does not resolve');
    const mid = await dnsAnswers();
    t.true(mid.allowed > before.allowed, 'the allowed name was answered by Berth');
    t.true(mid.refused > before.refused, "the other name was refused by Berth (an immediate NXDOMAIN, not a resolver's timeout)");
    // The learner's engine asks for docker.io before it pulls through the mirror: that lookup reaches Berth too,
    // where it used to wait 10 s on a resolver the firewall refuses.
    const pull = await exec(s, a, 'docker pull busybox >/dev/null && echo pulled', { timeoutMs: 120_000 });
    t.regex(pull.stdout, /pulled/, pull.stderr);
    t.true((await dnsAnswers()).refused > mid.refused, "the learner engine's lookup of docker.io was answered by Berth");
  });
});

// Terminals attached straight to the tab's dtach socket in the node (sandbox-server/terminal/attach.ts,
// node-connect.c), on both providers: the shell works, resizes and survives a reconnect with no `dtach -a`
// process in the node; a learner's symlink at the socket's path to a host socket is never followed; an
// instructor watches and takes over the same way; BERTH_TERMINAL_ATTACH=exec still works. The helper that
// connects inside the node refuses a process outside the node's cgroup.
// The Incus half needs incusd (runtime/incus) with the learner image; without it those tests are skipped.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as dockerConnect } from '../../sandbox-server/engine/docker.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { containerName } from '../../sandbox-server/engine/node-spec.ts';
import { buildHelper, connectInNode } from '../../sandbox-server/terminal/attach.ts';
import { providerNodes, type ProviderName } from '../helpers/provider-nodes.ts';
import { createSession, createWorkshop, engineHost, exec, firstAdminToken, startServer, type Created, type TestServer } from '../helpers/server.ts';
import { lineAfter, openShadow, openTerminal, plain, sizeSeen } from '../helpers/terminal.ts';
import { eventually } from '../helpers/wait.ts';

const INCUS_SOCKET = process.env.BERTH_INCUS_SOCKET ?? '/var/lib/incus/unix.socket';
const SETTINGS: Record<ProviderName, Record<string, string>> = {
  docker: { BERTH_PROVIDER: 'docker' },
  // The host's own name is the one allowed name: no traffic off this machine.
  incus: { BERTH_PROVIDER: 'incus', BERTH_EGRESS_ALLOW: hostname() },
};
const PROMPT = /learner@node1\S*\$ /;

/** The dtach processes in the node: `-n` masters (the shells' holders) and `-a` clients (named berth-term-*
 * by the exec path, so matched by their arguments). */
async function dtachProcesses(s: TestServer, c: Created) {
  const r = await exec(s, c, "ps -eo args= | grep -e ' -[an] /tmp/.berth-tab-' || true", { timeoutMs: 60_000 });
  const lines = r.stdout.split('\n').filter(Boolean);
  return { masters: lines.filter((l) => / -n \/tmp/.test(l)), clients: lines.filter((l) => / -a \/tmp/.test(l)) };
}

/** Waits until the server's log has a line matching `re`. */
const logged = (s: TestServer, re: RegExp, what: string) => eventually(() => (re.test(s.logs.join('')) ? true : undefined), { timeoutMs: 60_000, what });

for (const provider of ['docker', 'incus'] as const) {
  const available = provider === 'docker' || existsSync(INCUS_SOCKET);
  const it = available ? test.serial : test.serial.skip;

  it(`${provider}: direct attach: the shell works, resizes, survives a reconnect, and no dtach client runs in the node`, async (t) => {
    const s = await startServer(SETTINGS[provider]);
    const c = await createSession(s);
    try {
      const term = await openTerminal(s.url, c.id, c.token);
      await term.waitFor(PROMPT, 60_000);
      t.is(await lineAfter(term, 'echo "sum=$((40+2))"', /\n\r?(sum=\S*)\r/), 'sum=42');
      const procs = await dtachProcesses(s, c);
      t.is(procs.masters.length, 1, procs.masters.join('\n'));
      t.deepEqual(procs.clients, [], 'the server speaks to the master itself');
      t.false(/attaching through exec/.test(s.logs.join('')), 'no fallback to exec');

      term.resize(123, 45);
      t.is(await sizeSeen(term, 123, 45), '45 123');
      t.is(await lineAfter(term, 'export BERTH_MARK=kept-$((6*7)); echo "exported=$BERTH_MARK"', /\n\r?(exported=\S*)\r/), 'exported=kept-42');
      const prompts = (text: string) => plain(text).match(new RegExp(PROMPT.source, 'g'))?.length ?? 0;
      const before = prompts(term.output());
      term.close();
      await term.closed;

      // A new connection redraws: after the replay of the old screen (the same text), the shell draws its
      // prompt again without a key typed.
      const again = await openTerminal(s.url, c.id, c.token, { cols: 90, rows: 20 });
      await again.waitForStatus(/"state":"reconnected"/);
      await eventually(() => (prompts(again.output()) > before ? true : undefined), { timeoutMs: 30_000, what: 'the prompt redrawn after the replay' });
      t.is(await lineAfter(again, 'echo "mark=$BERTH_MARK"', /\n\r?(mark=\S*)\r/), 'mark=kept-42', 'the same shell after a reconnect');
      t.is(await sizeSeen(again, 90, 20), '20 90', "the new tab's size reached the shell on attach");
      // A paste much larger than one packet write arrives whole (dtach packets of 8 bytes, never split).
      const paste = `echo ${'x'.repeat(3000)} | wc -c\r`;
      const mark = again.mark();
      again.send(paste);
      await again.waitFor(/\n\r?3001\r/, { from: mark, timeoutMs: 30_000 });
      const tab2 = await openTerminal(s.url, c.id, c.token, { tab: '2' });
      t.is(await lineAfter(tab2, 'echo "tab2=${BERTH_MARK:-unset}"', /\n\r?(tab2=\S*)\r/), 'tab2=unset', 'a second tab is a different shell');
      t.deepEqual((await dtachProcesses(s, c)).clients, []);
      // The shell's exit closes the terminal as it did through exec.
      again.send('exit\r');
      t.is((await again.closed).code, 1000);
      tab2.close();
    } finally {
      await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
      await s.stop();
    }
  });

  it(`${provider}: a learner's symlink at the tab's socket path to a host socket is never connected to`, async (t) => {
    const sockPath = join(tmpdir(), `berth-host-${process.pid}-${provider}.sock`);
    rmSync(sockPath, { force: true });
    let connections = 0;
    const host: Server = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((ok) => host.listen(sockPath, ok));
    const s = await startServer(SETTINGS[provider]);
    const c = await createSession(s);
    try {
      const r = await exec(s, c, `ln -s ${sockPath} /tmp/.berth-tab-7 && ln -s ../../..${sockPath} /tmp/.berth-tab-8 && echo linked`, { timeoutMs: 60_000 });
      t.is(r.stdout.trim(), 'linked', r.stderr);
      // The control: followed from the host, the learner's link does lead to the host socket. This is what
      // the helper must not do.
      const pid = await providerNodes(provider, await engineHost()).nodePid(c.id, 'node1');
      await new Promise<void>((ok, fail) => {
        const probe = connect(`/proc/${pid}/root/tmp/.berth-tab-7`, () => {
          probe.destroy();
          ok();
        });
        probe.on('error', fail);
      });
      await eventually(() => (connections === 1 ? true : undefined), { what: 'the control connection' });

      for (const tab of ['7', '8']) {
        const term = await openTerminal(s.url, c.id, c.token, { tab });
        // The direct path refuses the link (logged), then the exec path tries inside the node, where the
        // link leads nowhere: dtach cannot make a shell there and the terminal ends.
        await logged(s, new RegExp(`"tab":"${tab}".*direct terminal attach failed|direct terminal attach failed.*"tab":"${tab}"`), `the refusal of tab ${tab}`);
        await term.closed;
      }
      t.regex(s.logs.join(''), /symbolic links/, 'the helper says why: a symlink');
      // The helper itself: the node's pid with another node's cgroup, or a host process with this node's
      // cgroup, is refused before any path is looked at (exit 4).
      const helperDir = mkdtempSync(join(tmpdir(), 'berth-helper-'));
      t.teardown(() => rmSync(helperDir, { recursive: true, force: true }));
      const helper = await buildHelper(helperDir);
      t.truthy(helper, 'gcc builds the helper');
      const cgroup =
        provider === 'docker'
          ? (
              await dockerConnect(await engineHost())
                .getContainer(containerName(c.id, 'node1'))
                .inspect()
            ).Id
          : `lxc.payload.${instanceName(c.id, 'node1')}`;
      const wrongNode = await connectInNode(
        helper!,
        { pid, cgroup: provider === 'docker' ? '0'.repeat(64) : `lxc.payload.${instanceName('nosuchsession', 'node1')}` },
        '/tmp/.berth-tab-7',
      );
      t.like(wrongNode, { code: 4 });
      const hostProcess = await connectInNode(helper!, { pid: process.pid, cgroup }, '/tmp/.berth-tab-7');
      t.like(hostProcess, { code: 4 });
      t.like(await connectInNode(helper!, { pid, cgroup }, '/tmp/.berth-tab-7'), { code: 1 });
      t.is(connections, 1, 'only the control reached the host socket');
      // Tab 1 is unaffected.
      const term = await openTerminal(s.url, c.id, c.token);
      t.is(await lineAfter(term, 'echo "ok=$((1+1))"', /\n\r?(ok=\S*)\r/, 60_000), 'ok=2');
      term.close();
    } finally {
      await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
      await s.stop();
      host.close();
      rmSync(sockPath, { force: true });
    }
  });

  it(`${provider}: an instructor watches and takes over through the direct attach`, async (t) => {
    const s = await startServer({ ...SETTINGS[provider], BERTH_POOL_SIZE: '0' });
    const admin = firstAdminToken(s);
    let workshopId = '';
    try {
      const w = await createWorkshop(s, { title: 'Attach', lessons: ['02-first-containers'], capacity: 1 });
      workshopId = w.id;
      const joined = await s.api('/api/join', { method: 'POST', json: { code: w.code, name: 'Ada' } });
      t.is(joined.status, 201, await joined.clone().text());
      const ada = (await joined.json()) as { learner: { id: string }; session: { id: string; token: string } };
      const c = { id: ada.session.id, token: ada.session.token } as Created;

      const term = await openTerminal(s.url, c.id, c.token, { tab: '2' });
      await term.waitFor(PROMPT, 60_000);
      // The learner's tab must exist before watching it: its socket is there once the prompt showed, but the
      // condition is checked, not assumed.
      await eventually(
        async () => ((await exec(s, c, 'test -S /tmp/.berth-tab-2 && echo yes', { timeoutMs: 30_000 })).stdout.trim() === 'yes' ? true : undefined),
        { timeoutMs: 60_000, what: "the learner's tab 2" },
      );
      term.send('echo tab-2-seen-$((40+2))\r');
      await term.waitFor(/tab-2-seen-42/, 30_000);

      const shadow = openShadow(s.url, workshopId, ada.learner.id, admin, { tab: '2' });
      await shadow.opened;
      await shadow.waitForStatus(/"state":"(ready|reconnected)"/, 60_000);
      await shadow.waitFor(/tab-2-seen-42/, 30_000);
      const from = shadow.mark();
      term.send('echo live-$((2*21))\r');
      await shadow.waitFor(/live-42/, { from, timeoutMs: 30_000 });
      shadow.send('echo ignored-$((1+1))\r');

      const takeover = openShadow(s.url, workshopId, ada.learner.id, admin, { tab: '2', takeover: true });
      await takeover.opened;
      await takeover.waitForStatus(/"state":"(ready|reconnected)"/, 60_000);
      const at = term.mark();
      takeover.send('echo helped-$((3*3))\r');
      await term.waitFor(/helped-9/, { from: at, timeoutMs: 30_000 });
      await shadow.waitFor(/helped-9/, { from, timeoutMs: 30_000 });
      t.false(plain(term.output()).includes('ignored-2'), 'read-only: the watcher typed nothing');
      t.deepEqual((await dtachProcesses(s, c)).clients, [], 'watch and take-over attach directly too');
      t.regex(s.logs.join(''), /"attach":"direct".*instructor terminal opened/);
      shadow.close();
      takeover.close();
      term.close();
    } finally {
      if (workshopId) await s.api(`/api/workshops/${workshopId}/end`, { method: 'POST', token: admin });
      await s.stop();
    }
  });

  it(`${provider}: BERTH_TERMINAL_ATTACH=exec attaches through a dtach client in the node`, async (t) => {
    const s = await startServer({ ...SETTINGS[provider], BERTH_TERMINAL_ATTACH: 'exec' });
    const c = await createSession(s);
    try {
      const term = await openTerminal(s.url, c.id, c.token);
      await term.waitFor(PROMPT, 60_000);
      t.is(await lineAfter(term, 'export BERTH_MARK=exec-$((6*7)); echo "exported=$BERTH_MARK"', /\n\r?(exported=\S*)\r/), 'exported=exec-42');
      t.is((await dtachProcesses(s, c)).clients.length, 1, "one dtach client, the terminal's");
      term.close();
      await term.closed;
      const again = await openTerminal(s.url, c.id, c.token);
      t.is(await lineAfter(again, 'echo "mark=$BERTH_MARK"', /\n\r?(mark=\S*)\r/), 'mark=exec-42');
      again.close();
    } finally {
      await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
      await s.stop();
    }
  });
}

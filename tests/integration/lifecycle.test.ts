// Sandboxes end when they should and a crashed server leaks nothing.
import test from 'ava';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type Held, testProviderNodes } from '../helpers/provider-nodes.ts';
import { createSession, engineHost, exec, startServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

function instanceOf(stateDir: string): string {
  const db = new DatabaseSync(join(stateDir, 'berth.db'), { readOnly: true });
  const { value } = db.prepare("SELECT value FROM meta WHERE key = 'instance'").get() as { value: string };
  db.close();
  return value;
}

/** Nodes the host holds (containers or Incus instances) of one sandbox, or of every sandbox of one server's state folder. */
const berthContainers = async (host: string, which: Held) => testProviderNodes(host).heldFor(which);

test.serial('a sandbox past its idle timeout is removed', async (t) => {
  const s = await startServer({ BERTH_IDLE_TIMEOUT_MIN: '0.05', BERTH_REAP_INTERVAL_S: '1' });
  try {
    const c = await createSession(s);
    t.is((await berthContainers(await engineHost(), { sandbox: c.id })).length, 1);
    // Idle after 3 s (the API answers 404 from then on), removed by the reaper within the next second or so:
    // the engine is asked until the node is gone (bounded), not slept on.
    const host = await engineHost();
    // Fails the test with this description if the node is still there after 30 s.
    await eventually(async () => ((await berthContainers(host, { sandbox: c.id })).length === 0 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'the reaper to remove the idle sandbox',
    });
    t.is((await s.api(`/api/sessions/${c.id}`, { token: c.token })).status, 404);
  } finally {
    await s.stop();
  }
});

test.serial('kill -9 the server: a restart adopts live sessions and removes the rest, nothing leaks', async (t) => {
  const host = await engineHost();
  const s1 = await startServer({ BERTH_POOL_SIZE: '1' });
  const keep = await createSession(s1);
  const drop = await createSession(s1);
  await exec(s1, keep, 'echo adopted > /home/learner/mark');
  // The pool refills, so that a pool sandbox exists at the moment of the crash.
  await eventually(async () => (/berth_sandboxes\{state="pool-ready"\} 1/.test(await (await s1.api('/metrics')).text()) ? true : undefined), {
    timeoutMs: 60_000,
    what: 'a ready pool sandbox',
  });
  await s1.api(`/api/sessions/${drop.id}`, { method: 'DELETE', token: drop.token });
  await s1.stop('SIGKILL');
  const s2 = await startServer({ BERTH_POOL_SIZE: '0' }, s1.stateDir);
  try {
    const r = await exec(s2, keep, 'cat /home/learner/mark');
    t.is(r.stdout, 'adopted\n', 'the session survives the crash with its files');
    // The new process answers the adopted sandbox's DNS again (engine/dns.ts) where the firewall is enforced.
    if (process.getuid?.() === 0) {
      await exec(s2, keep, 'getent hosts docker.io; true');
      t.regex(await (await s2.api('/metrics')).text(), /berth_sandbox_dns_queries_total\{answer="refused"\} [1-9]/);
    }
    t.deepEqual(await berthContainers(host, { sandbox: drop.id }), []);
    // Only the adopted session's node is left: the old pool sandbox was removed.
    const instance = { instance: instanceOf(s1.stateDir) };
    t.is((await berthContainers(host, instance)).length, 1);
    await s2.api(`/api/sessions/${keep.id}`, { method: 'DELETE', token: keep.token });
    t.deepEqual(await berthContainers(host, instance), []);
  } finally {
    await s2.stop();
  }
});

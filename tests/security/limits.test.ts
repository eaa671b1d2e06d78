// Resource limits hold: disk, inodes, memory and processes stay inside one sandbox, and a neighbour's
// terminal stays responsive while they bite.
import test from 'ava';
import { createSession, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';
import { openTerminal } from '../helpers/terminal.ts';
import { eventually } from '../helpers/wait.ts';

let s: TestServer;
test.before(async () => {
  s = await startServer({ BERTH_SANDBOX_DISK: '1g', BERTH_SANDBOX_MEMORY: '768m', BERTH_SANDBOX_PIDS: '512' });
});
test.after.always(async () => {
  await s?.stop();
});

/** Echo round trips on a neighbour's terminal while `load` runs; returns the slowest in ms. */
async function neighbourEcho(load: Promise<unknown>): Promise<number> {
  const n = await createSession(s);
  try {
    const term = await openTerminal(s.url, n.id, n.token);
    await term.waitFor(/learner@node1\S*\$ /);
    let worst = 0;
    let done = false;
    void load.finally(() => {
      done = true;
    });
    for (let i = 0; !done && i < 40; i++) {
      const t0 = performance.now();
      term.send(`echo ping-${i}\r`);
      await term.waitFor(new RegExp(`\\n\\r?ping-${i}\\r`), 15_000);
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 250));
    }
    await load;
    term.close();
    return worst;
  } finally {
    await s.api(`/api/sessions/${n.id}`, { method: 'DELETE', token: n.token });
  }
}

test.serial('disk fill and inode exhaustion stop at the node disk, not the host', async (t) => {
  await withSession(s, {}, async (c) => {
    const df = await exec(s, c, 'df -B1 --output=size /home/learner | tail -1');
    t.true(Number(df.stdout.trim()) < 1.1 * 2 ** 30, `home is the 1 GiB node disk: ${df.stdout}`);
    const fill = exec(s, c, 'dd if=/dev/zero of=/home/learner/fill bs=1M count=2048 2>&1 | grep -o "No space left on device"; df -h /home/learner | tail -1', {
      timeoutMs: 120_000,
    });
    const worst = await neighbourEcho(fill);
    const r = await fill;
    t.regex(r.stdout, /No space left on device/);
    t.log(`neighbour echo worst ${worst.toFixed(0)} ms during disk fill`);
    t.true(worst < 2000, `neighbour terminal stayed responsive (worst ${worst} ms)`);
    const inodes = await exec(
      s,
      c,
      'rm -f fill; mkdir -p many && cd many && for i in $(seq 1 80000); do : > f$i || { echo "stopped at $i"; break; }; done; df -i /home/learner | tail -1',
      { timeoutMs: 180_000 },
    );
    t.regex(inodes.stdout, /stopped at \d+/);
    // The tmpfs places are bounded too.
    const tmp = await exec(s, c, 'dd if=/dev/zero of=/tmp/fill bs=1M count=400 2>&1 | grep -o "No space left on device"; rm -f /tmp/fill');
    t.regex(tmp.stdout, /No space left on device/);
  });
});

test.serial('a fork bomb is contained by the pids limit', async (t) => {
  await withSession(s, {}, async (c) => {
    // A bomb that stops forking after 10 s (each copy reads the clock with a builtin, so it needs no fork to
    // do so); until then it presses on the pids limit. Its copies exit at once, and the node's init must reap
    // them, or their zombies would hold the pids limit for good. The `sleep`, started first, keeps the exec
    // (and the neighbour measurement) going for the bomb's whole life.
    const bomb = exec(
      s,
      c,
      `printf -v now '%(%s)T' -1; export END=$((now + 10)); sleep 12 & bash -c 'bomb() { printf -v n "%(%s)T" -1; if (( n < END )); then bomb | bomb & fi; }; bomb' 2>/dev/null; wait $!; true`,
      { timeoutMs: 60_000 },
    );
    const worst = await neighbourEcho(bomb);
    t.log(`neighbour echo worst ${worst.toFixed(0)} ms during fork bomb`);
    t.true(worst < 2000, `neighbour terminal stayed responsive (worst ${worst} ms)`);
    await bomb;
    // A new command once the bomb has stopped: it needs fresh pids, so the bomb's copies must be gone. The node's
    // init reaps them as fast as the machine lets it: waited for (up to 90 s), not given a fixed time.
    let after = { stdout: '' };
    const reaped = await eventually(
      async () => {
        after = await exec(s, c, 'echo survived; ps -e --no-headers | wc -l; docker info -f "{{.ServerVersion}}"', { timeoutMs: 60_000 });
        return /survived/.test(after.stdout) && Number(after.stdout.split('\n')[1]) < 200 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000, what: "the bomb's copies to be reaped" },
    ).catch(() => false);
    // The node takes commands again; its own engine may have lost threads to the bomb (SECURITY.md).
    t.regex(after.stdout, /survived/, 'the node takes commands again after the bomb');
    t.true(reaped, `the bomb's copies were reaped: ${after.stdout}`);
    t.log(`learner engine after the bomb: ${after.stdout.includes('.') ? 'up' : 'down (reset the sandbox)'}`);
  });
});

test.serial('a memory bomb is ended by the OOM killer inside the node, with a message the learner understands', async (t) => {
  await withSession(s, {}, async (c) => {
    // tail buffers a line without end in memory; the kernel's OOM killer ends it inside the node's 768 MiB,
    // and the learner sees an ordinary "Killed" with status 137 while their engine stays up.
    const mem = await exec(s, c, 'head -c 2000m /dev/zero | tail > /dev/null; echo "tail:$?"; docker info -f "{{.ServerVersion}}"', { timeoutMs: 60_000 });
    t.regex(mem.stdout, /tail:137\n\d+\.\d+/);
    t.regex(mem.stderr, /Killed/);
  });
});

// Flow control: a shell that prints without end can neither flood a slow browser nor grow the server.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HIGH_WATER } from '../../sandbox-server/terminal/relay.ts';
import { createSession, startServer } from '../helpers/server.ts';
import { openTerminal } from '../helpers/terminal.ts';
import { eventually } from '../helpers/wait.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resident memory of a process, or NaN once it has exited (a zombie has no VmRSS line). */
const rssMiB = (pid: number) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
};
// Stated bound for the server process while 200 MB pass through one terminal.
const RSS_BOUND_MIB = 300;

test('yes | head -c 200M: the shell pauses for a client that does not ack, and server RSS stays bounded', async (t) => {
  const s = await startServer();
  let c: Awaited<ReturnType<typeof createSession>> | undefined;
  try {
    c = await createSession(s);
    const term = await openTerminal(s.url, c.id, c.token);
    await term.waitFor(/learner@node1\S*\$ /);
    const before = rssMiB(s.child.pid!);
    term.setAutoAck(false);
    const start = term.bytes();
    term.send('yes | head -c 200M; echo FLOW-$((40+2))\r');
    // The relay sends up to the high-water mark, then stops reading the shell.
    await eventually(() => (term.bytes() - start >= HIGH_WATER ? true : undefined), { timeoutMs: 30_000, what: `${HIGH_WATER} un-acked bytes` });
    // Proving that nothing more comes needs a quiet interval; one more chunk or two may still be in flight.
    await sleep(1000);
    const unackedSeen = term.bytes() - start;
    t.true(unackedSeen <= HIGH_WATER + 512 * 1024, `received ${unackedSeen} bytes without acking`);
    await sleep(1000);
    t.true(term.bytes() - start - unackedSeen < 64 * 1024, 'nothing more arrives while the client is silent');

    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(s.child.pid!) || 0);
    }, 200);
    term.setAutoAck(true);
    // A terminal that closes instead (the server gone, the relay giving up) fails here with the server's own words.
    const ended = await Promise.race([term.waitFor(/FLOW-42/, 240_000).then(() => 'done'), term.closed.then((c) => `terminal closed (${c.code})`)]);
    clearInterval(sampler);
    t.is(ended, 'done', `server ${s.child.exitCode ?? s.child.signalCode ?? 'running'}; its last log lines:\n${s.logs.join('').slice(-3000)}`);
    t.true(term.bytes() - start > 200 * 1024 * 1024, 'all of the output arrived');
    t.log(`server RSS before ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB while relaying ${(term.bytes() / 2 ** 20).toFixed(0)} MiB`);
    t.true(peak < RSS_BOUND_MIB, `peak RSS ${peak} MiB`);
    term.close();
  } finally {
    // Sessions outlive a server's stop (a restart adopts them), so the test removes its own.
    if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
    await s.stop();
  }
});

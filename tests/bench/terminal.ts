// 3. Terminal: keystroke echo and bulk output through Berth's WebSocket terminal, a bare `docker exec -it`
// on the same node container driven from a real pty (the limit), and shellinabox as a peer web terminal.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LEARNER_ENV } from '../../sandbox-server/engine/exec.ts';
import { containerName } from '../../sandbox-server/engine/node-spec.ts';
import { type Ctx, benchServer, closeServer, create } from './lib/context.ts';
import { run } from './lib/host.ts';
import { type Transport, berthTransport, measureBulk, measureEcho, shellinabox, waitForPrompt } from './lib/probe.ts';
import { mbps, ms, ratio } from './lib/report.ts';
import { type Summary, round, summarize } from './lib/stats.ts';

type Figures = { echo: Summary; bulk: { seconds: number; bytesReceived: number; payloadBytes: number } };

/** The shell a learner gets, without Berth in the way: the same user, environment and node. */
function execArgv(container: string, shell = ['bash', '-l']) {
  return ['docker', 'exec', '-it', '-u', 'learner', '-w', '/home/learner', ...LEARNER_ENV.flatMap((e) => ['-e', e]), container, ...shell];
}

// The shell holder Berth's terminal attaches to (terminal/upgrade.ts), here under a bare exec: it tells the
// cost of dtach apart from the cost of the web layer. A fresh session per probe: each probe ends with `exit`,
// and attaching again at once could find the old session's socket before its master had removed it.
const DTACH = ['bash', '-c', 's=/tmp/.bench-dtach-$$; [ -S $s ] || dtach -n $s -E -z bash -l; exec dtach -a $s -E -z -r winch'];

async function bare(ctx: Ctx, argv: string[], mode: 'echo' | 'bulk', amount: number) {
  const probe = join(import.meta.dirname, 'lib', 'pty-probe.py');
  const r = await run('python3', [probe, mode, String(amount), '--', ...argv], { env: { ...process.env, DOCKER_HOST: ctx.engine }, timeoutMs: 900_000 });
  return JSON.parse(r.stdout) as { samplesMs?: number[]; seconds?: number; bytesReceived?: number };
}

async function viaTransport(open: () => Promise<Transport>, keys: number, bytes: number): Promise<Figures> {
  // Each measurement gets a fresh connection, as the pty probe gets a fresh exec.
  let t = await open();
  try {
    await waitForPrompt(t);
    const echo = summarize(await measureEcho(t, keys));
    await t.close();
    t = await open();
    await waitForPrompt(t);
    const bulk = await measureBulk(t, bytes);
    return { echo, bulk: { ...bulk, payloadBytes: bytes } };
  } finally {
    await t.close();
  }
}

/** shellinabox from Debian: installed when missing (the machine reaches Debian's mirror), else skipped. */
async function peerAvailable(ctx: Ctx): Promise<string | null> {
  const have = () => ['/usr/bin/shellinaboxd', '/usr/sbin/shellinaboxd'].some((p) => existsSync(p));
  if (have()) return null;
  if (process.getuid?.() !== 0) return 'shellinaboxd is not installed and the benchmark is not root';
  ctx.log('terminal: installing shellinabox with apt-get (the peer web terminal)');
  try {
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'shellinabox'], {
      // policy-rc.d-style: the package's own service must not start; the benchmark runs its own on loopback.
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' }, timeoutMs: 300_000,
    });
  } catch (err) {
    return `apt-get install shellinabox failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return have() ? null : 'shellinaboxd not found after installing shellinabox';
}

export async function terminal(ctx: Ctx) {
  const { keys, bulkMb } = ctx.flags;
  const bytes = bulkMb * 1_000_000;
  const b = await benchServer(ctx, { BERTH_POOL_SIZE: '0' });
  try {
    const c = await create(b);
    const container = containerName(c.id, 'node1');
    const results: Record<string, Figures> = {};

    ctx.log(`terminal: bare docker exec -it (pty), ${keys} keys, ${bulkMb} MB`);
    const e = await bare(ctx, execArgv(container), 'echo', keys);
    const k = await bare(ctx, execArgv(container), 'bulk', bytes);
    results.bare = { echo: summarize(e.samplesMs!), bulk: { seconds: k.seconds!, bytesReceived: k.bytesReceived!, payloadBytes: bytes } };
    ctx.log(`terminal: bare docker exec -it + dtach (pty), ${keys} keys, ${bulkMb} MB`);
    const de = await bare(ctx, execArgv(container, DTACH), 'echo', keys);
    const dk = await bare(ctx, execArgv(container, DTACH), 'bulk', bytes);
    results.bareDtach = { echo: summarize(de.samplesMs!), bulk: { seconds: dk.seconds!, bytesReceived: dk.bytesReceived!, payloadBytes: bytes } };

    ctx.log(`terminal: Berth WebSocket terminal, ${keys} keys, ${bulkMb} MB`);
    let tab = 0;
    results.berth = await viaTransport(() => berthTransport(b.s.url, c.id, c.token, `bench${++tab}`), keys, bytes);

    let peerSkipped = ctx.flags.peer ? await peerAvailable(ctx) : 'skipped with --no-peer';
    if (!peerSkipped) {
      ctx.log(`terminal: shellinabox (peer), ${keys} keys, ${bulkMb} MB`);
      const command = `/usr/bin/env DOCKER_HOST=${ctx.engine} ${execArgv(container).join(' ')}`;
      try {
        results.shellinabox = await viaTransport(() => shellinabox(command), keys, bytes);
      } catch (err) {
        peerSkipped = `shellinabox failed: ${(err as Error).message}`;
      }
    }
    if (peerSkipped) ctx.notes.push(`Terminal peer not measured: ${peerSkipped}.`);

    const bare0 = results.bare;
    const names: Record<string, string> = { berth: 'Berth WebSocket', bareDtach: 'bare exec + dtach (diagnostic)', shellinabox: 'shellinabox (peer)' };
    for (const [key, name] of Object.entries(names)) {
      const r = results[key];
      if (!r) continue;
      const isBerth = key === 'berth';
      for (const p of ['p50', 'p99'] as const) {
        ctx.rows.push({
          section: 'terminal', what: `${name}: keystroke echo ${p} (n=${r.echo.n})`,
          berth: ms(r.echo[p]), baseline: ms(bare0.echo[p]), baselineIs: 'bare `docker exec -it` on a pty, same node',
          ratio: ratio(r.echo[p], bare0.echo[p]),
          ...(isBerth && p === 'p50' ? { target: '≤ 2× bare', met: r.echo.p50 <= 2 * bare0.echo.p50 } : {}),
        });
      }
      const rate = r.bulk.payloadBytes / r.bulk.seconds;
      const bareRate = bare0.bulk.payloadBytes / bare0.bulk.seconds;
      ctx.rows.push({
        section: 'terminal', what: `${name}: bulk output, ${bulkMb} MB of \`yes\``,
        berth: mbps(rate), baseline: mbps(bareRate), baselineIs: 'bare `docker exec -it` on a pty, same node',
        ratio: ratio(rate, bareRate),
        ...(isBerth ? { target: '≥ 0.5× bare', met: rate >= 0.5 * bareRate } : {}),
      });
    }
    ctx.data.terminal = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, {
      echoMs: v.echo, bulk: { ...v.bulk, seconds: round(v.bulk.seconds), mbPerSecond: round(v.bulk.payloadBytes / v.bulk.seconds / 1e6) },
    }]));
  } finally {
    await closeServer(b, ctx);
  }
}

// 3. Terminal: keystroke echo and bulk output through Berth's WebSocket terminal, a bare `docker exec -it`
// on the same node container driven from a real pty (the limit), two diagnostics that say where Berth's time
// goes (dtach under a bare exec; Berth's own exec stream without the WebSocket), and shellinabox as a peer.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../sandbox-server/engine/docker.ts';
import { LEARNER_ENV, openTty as dockerTty } from '../../sandbox-server/engine/exec.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { AS_LEARNER, LEARNER_ENV as INCUS_ENV, openTty as incusTty } from '../../sandbox-server/engine/incus/exec.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { containerName } from '../../sandbox-server/engine/node-spec.ts';
import { type Ctx, benchServer, closeServer, create } from './lib/context.ts';
import { run } from './lib/host.ts';
import { type Transport, berthTransport, engineTransport, measureBulk, measureEcho, shellinabox, waitForPrompt } from './lib/probe.ts';
import { mbps, ms, ratio } from './lib/report.ts';
import { type Summary, round, summarize } from './lib/stats.ts';

type Bulk = { seconds: number; bytesReceived: number; payloadBytes: number };

/** The shell a learner gets, without Berth in the way: the same user, environment and node, through the
 *  provider's own client (`docker exec -it`, or `incus exec -t` becoming the learner as Berth's exec does). */
function execArgv(ctx: Ctx, sessionId: string, shell = ['bash', '-l']) {
  if (ctx.provider.name === 'incus') {
    return [
      'incus',
      'exec',
      instanceName(sessionId, 'node1'),
      '-t',
      '--cwd',
      '/home/learner',
      ...Object.entries({ ...INCUS_ENV, TERM: 'xterm-256color' }).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      '--',
      ...AS_LEARNER,
      ...shell,
    ];
  }
  return [
    'docker',
    'exec',
    '-it',
    '-u',
    'learner',
    '-w',
    '/home/learner',
    ...LEARNER_ENV.flatMap((e) => ['-e', e]),
    containerName(sessionId, 'node1'),
    ...shell,
  ];
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

// Each measurement gets a fresh connection, as the pty probe gets a fresh exec.
async function echoVia(open: () => Promise<Transport>, keys: number): Promise<number[]> {
  const t = await open();
  try {
    await waitForPrompt(t);
    return await measureEcho(t, keys);
  } finally {
    await t.close();
  }
}

async function bulkVia(open: () => Promise<Transport>, bytes: number): Promise<Bulk> {
  const t = await open();
  try {
    await waitForPrompt(t);
    return { ...(await measureBulk(t, bytes)), payloadBytes: bytes };
  } finally {
    await t.close();
  }
}

type Way = { key: string; name: string; echo: (keys: number) => Promise<number[]>; bulk?: (bytes: number) => Promise<Bulk> };

/** shellinabox from Debian: installed when missing (the machine reaches Debian's mirror), else skipped. */
async function peerAvailable(ctx: Ctx): Promise<string | null> {
  const have = () => ['/usr/bin/shellinaboxd', '/usr/sbin/shellinaboxd'].some((p) => existsSync(p));
  if (have()) return null;
  if (process.getuid?.() !== 0) return 'shellinaboxd is not installed and the benchmark is not root';
  ctx.log('terminal: installing shellinabox with apt-get (the peer web terminal)');
  try {
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'shellinabox'], {
      // policy-rc.d-style: the package's own service must not start; the benchmark runs its own on loopback.
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' },
      timeoutMs: 300_000,
    });
  } catch (err) {
    return `apt-get install shellinabox failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return have() ? null : 'shellinaboxd not found after installing shellinabox';
}

export async function terminal(ctx: Ctx) {
  const { keys, bulkMb, echoRounds } = ctx.flags;
  const bytes = bulkMb * 1_000_000;
  const b = await benchServer(ctx, { BERTH_POOL_SIZE: '0' });
  try {
    const c = await create(b);
    const incus = ctx.provider.name === 'incus';
    const client = incus ? 'incus exec -t' : 'docker exec -it';
    // Berth's own exec with a TTY on this provider (the exec path of terminal/attach.ts).
    const incusClient = incus ? new IncusClient({ socketPath: process.env.INCUS_SOCKET ?? '/var/lib/incus/unix.socket' }) : null;
    const openTty = (cmd: string[], size: { cols: number; rows: number }) =>
      incusClient
        ? incusTty(incusClient, instanceName(c.id, 'node1'), cmd, size)
        : dockerTty(connect(ctx.engine).getContainer(containerName(c.id, 'node1')), cmd, size);
    let tab = 0;
    const ways: Way[] = [
      {
        key: 'bare',
        name: `bare \`${client}\``,
        echo: async (n) => (await bare(ctx, execArgv(ctx, c.id), 'echo', n)).samplesMs!,
        bulk: async (n) => {
          const k = await bare(ctx, execArgv(ctx, c.id), 'bulk', n);
          return { seconds: k.seconds!, bytesReceived: k.bytesReceived!, payloadBytes: n };
        },
      },
      {
        key: 'bareDtach',
        name: 'bare exec + dtach (diagnostic)',
        echo: async (n) => (await bare(ctx, execArgv(ctx, c.id, DTACH), 'echo', n)).samplesMs!,
        bulk: async (n) => {
          const k = await bare(ctx, execArgv(ctx, c.id, DTACH), 'bulk', n);
          return { seconds: k.seconds!, bytesReceived: k.bytesReceived!, payloadBytes: n };
        },
      },
      {
        key: 'engine',
        name: "Berth's exec stream + dtach, no WebSocket (diagnostic)",
        echo: (n) => echoVia(() => engineTransport(openTty, `bench-engine${++tab}`), n),
      },
      {
        key: 'berth',
        name: `Berth WebSocket (${b.s.env.BERTH_TERMINAL_ATTACH ?? 'direct'} attach)`,
        echo: (n) => echoVia(() => berthTransport(b.s.url, c.id, c.token, `bench${++tab}`), n),
        bulk: (n) => bulkVia(() => berthTransport(b.s.url, c.id, c.token, `bench${++tab}`), n),
      },
    ];
    let peerSkipped = ctx.flags.peer ? await peerAvailable(ctx) : 'skipped with --no-peer';
    if (!peerSkipped) {
      const command = `/usr/bin/env DOCKER_HOST=${ctx.engine} ${execArgv(ctx, c.id).join(' ')}`;
      ways.push({
        key: 'shellinabox',
        name: 'shellinabox (peer)',
        echo: (n) => echoVia(() => shellinabox(command), n),
        bulk: (n) => bulkVia(() => shellinabox(command), n),
      });
    }

    // Echo in interleaved rounds, every transport in turn in each: on a shared machine, load that comes and goes
    // then falls on all of them alike instead of on whichever was being measured at the time.
    const samples: Record<string, number[]> = Object.fromEntries(ways.map((w) => [w.key, []]));
    ctx.log(`terminal: keystroke echo, ${keys} keys per transport in ${echoRounds} interleaved rounds (${ways.map((w) => w.key).join(', ')})`);
    for (let r = 0; r < echoRounds; r++) {
      const n = Math.floor(keys / echoRounds) + (r < keys % echoRounds ? 1 : 0);
      for (const w of ways) {
        try {
          samples[w.key].push(...(await w.echo(n)));
        } catch (err) {
          if (w.key !== 'shellinabox') throw err;
          peerSkipped = `shellinabox failed: ${(err as Error).message}`;
          ways.splice(ways.indexOf(w), 1);
        }
      }
    }
    const bulks: Record<string, Bulk> = {};
    for (const w of ways) {
      if (!w.bulk) continue;
      ctx.log(`terminal: bulk output, ${bulkMb} MB, ${w.key}`);
      try {
        bulks[w.key] = await w.bulk(bytes);
      } catch (err) {
        if (w.key !== 'shellinabox') throw err;
        peerSkipped = `shellinabox failed: ${(err as Error).message}`;
      }
    }
    if (peerSkipped) ctx.notes.push(`Terminal peer not measured: ${peerSkipped}.`);

    const echo = Object.fromEntries(
      Object.entries(samples)
        .filter(([, v]) => v.length)
        .map(([k, v]) => [k, summarize(v)]),
    ) as Record<string, Summary>;
    const bare0 = { echo: echo.bare, bulk: bulks.bare };
    const bareRate = bare0.bulk.payloadBytes / bare0.bulk.seconds;
    const baselineIs = `bare \`${client}\` on a pty, same node, same rounds`;
    // Berth first, then the diagnostics that say where its time goes, then the peer.
    for (const key of ['berth', 'bareDtach', 'engine', 'shellinabox']) {
      const w = ways.find((x) => x.key === key);
      if (!w || !echo[key]) continue;
      const isBerth = key === 'berth';
      for (const p of ['p50', 'p99'] as const) {
        ctx.rows.push({
          section: 'terminal',
          what: `${w.name}: keystroke echo ${p} (n=${echo[key].n})`,
          berth: ms(echo[key][p]),
          baseline: ms(bare0.echo[p]),
          baselineIs,
          ratio: ratio(echo[key][p], bare0.echo[p]),
          ...(isBerth && p === 'p50' ? { target: '≤ 2× bare', met: echo[key].p50 <= 2 * bare0.echo.p50 } : {}),
        });
      }
      const k = bulks[key];
      if (!k) continue;
      const rate = k.payloadBytes / k.seconds;
      ctx.rows.push({
        section: 'terminal',
        what: `${w.name}: bulk output, ${bulkMb} MB of \`yes\``,
        berth: mbps(rate),
        baseline: mbps(bareRate),
        baselineIs: `bare \`${client}\` on a pty, same node`,
        ratio: ratio(rate, bareRate),
        ...(isBerth ? { target: '≥ 0.5× bare', met: rate >= 0.5 * bareRate } : {}),
      });
    }
    ctx.data.terminal = Object.fromEntries(
      Object.keys(echo).map((k) => [
        k,
        {
          echoMs: echo[k],
          ...(bulks[k] ? { bulk: { ...bulks[k], seconds: round(bulks[k].seconds), mbPerSecond: round(bulks[k].payloadBytes / bulks[k].seconds / 1e6) } } : {}),
        },
      ]),
    );
    ctx.data.terminalEcho = { rounds: echoRounds, order: ways.map((w) => w.key), attach: b.s.env.BERTH_TERMINAL_ATTACH ?? 'direct' };
  } finally {
    await closeServer(b, ctx);
  }
}

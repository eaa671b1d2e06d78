// 1. Ready time: POST /api/sessions until the first byte of the prompt arrives on the terminal WebSocket,
// warm (from the pool), cold (no pool) and for a 3-node session; baseline: `docker run --rm busybox true`.
import { OP } from '../../sandbox-server/terminal/protocol.ts';
import { openTerminal, plain } from '../helpers/terminal.ts';
import { type Bench, type Ctx, benchServer, closeServer, create, remove } from './lib/context.ts';
import { ms, ratio } from './lib/report.ts';
import { type Summary, summarize } from './lib/stats.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Run = { createMs: number; firstByteMs: number; promptMs: number };

/** One session from request to prompt; the session is removed afterwards (not timed). */
async function once(b: Bench, body: object): Promise<Run> {
  const t0 = performance.now();
  const c = await create(b, body);
  const createMs = performance.now() - t0;
  try {
    const term = await openTerminal(b.s.url, c.id, c.token);
    // Attached before the first message event can run: `open` and each message are separate tasks.
    let firstByteMs = NaN;
    let text = '';
    const promptMs = await new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no prompt within 60 s: ${JSON.stringify(plain(text))}`)), 60_000);
      term.ws.addEventListener('message', (ev) => {
        const f = Buffer.from(ev.data as ArrayBuffer);
        if (f[0] !== OP.OUTPUT) return;
        const now = performance.now() - t0;
        if (Number.isNaN(firstByteMs)) firstByteMs = now;
        text += f.subarray(1).toString('utf8');
        // The prompt's first byte is in the frame that brings its first visible characters.
        if (/learner@node1/.test(plain(text))) { clearTimeout(timer); ok(now); }
      });
    });
    term.close();
    return { createMs, firstByteMs, promptMs };
  } finally {
    await remove(b, c);
  }
}

/** Waits until the warm pool is full again and nothing is starting, so each warm run finds it as a learner would. */
async function poolFull(b: Bench, size: number) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const m = await (await b.s.api('/metrics')).text();
    const ready = Number(/berth_sandboxes\{state="pool-ready"\} (\d+)/.exec(m)?.[1] ?? -1);
    const starting = Number(/berth_sandboxes\{state="starting"\} (\d+)/.exec(m)?.[1] ?? -1);
    if (ready >= size && starting === 0) return;
    await sleep(200);
  }
  throw new Error('the warm pool did not refill within 120 s');
}

type Variant = { name: string; berth: Summary; firstByte: Summary; create: Summary; baseline: Summary };

async function variant(ctx: Ctx, b: Bench, name: string, body: object, before: () => Promise<void>): Promise<Variant> {
  const runs: Run[] = [];
  const base: number[] = [];
  for (let i = 0; i < ctx.flags.runs; i++) {
    await before();
    // The baseline runs interleaved with Berth's, so both see the same machine.
    base.push((await ctx.docker(['run', '--rm', 'busybox', 'true'])).ms);
    runs.push(await once(b, body));
    if ((i + 1) % 10 === 0) ctx.log(`  ${name}: ${i + 1}/${ctx.flags.runs}`);
  }
  return {
    name,
    berth: summarize(runs.map((r) => r.promptMs)),
    firstByte: summarize(runs.map((r) => r.firstByteMs)),
    create: summarize(runs.map((r) => r.createMs)),
    baseline: summarize(base),
  };
}

export async function ready(ctx: Ctx) {
  const variants: Variant[] = [];
  ctx.log(`ready: warm pool of ${ctx.flags.pool}, ${ctx.flags.runs} runs`);
  const warm = await benchServer({ BERTH_POOL_SIZE: String(ctx.flags.pool) });
  try {
    variants.push(await variant(ctx, warm, 'warm', {}, () => poolFull(warm, ctx.flags.pool)));
  } finally {
    await closeServer(warm, ctx.engine, ctx.log);
  }
  const cold = await benchServer({ BERTH_POOL_SIZE: '0' });
  try {
    ctx.log(`ready: cold, ${ctx.flags.runs} runs`);
    variants.push(await variant(ctx, cold, 'cold', {}, async () => {}));
    ctx.log(`ready: 3 nodes (always cold: the pool holds single nodes), ${ctx.flags.runs} runs`);
    variants.push(await variant(ctx, cold, '3-node', { nodes: 3 }, async () => {}));
  } finally {
    await closeServer(cold, ctx.engine, ctx.log);
  }
  const targets: Record<string, { ms: number; text: string }> = { warm: { ms: 500, text: 'p50 < 0.5 s' }, cold: { ms: 3000, text: 'p50 < 3 s' } };
  for (const v of variants) {
    for (const p of ['p50', 'p95', 'max'] as const) {
      const t = p === 'p50' ? targets[v.name] : undefined;
      ctx.rows.push({
        section: 'ready', what: `${v.name} session → prompt, ${p} (n=${v.berth.n})`,
        berth: ms(v.berth[p]), baseline: ms(v.baseline[p]), baselineIs: '`docker run --rm busybox true` on the host engine',
        ratio: ratio(v.berth[p], v.baseline[p]),
        ...(t ? { target: t.text, met: v.berth[p] < t.ms } : {}),
      });
    }
  }
  ctx.data.ready = variants;
}

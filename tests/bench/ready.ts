// 1. Ready time: POST /api/sessions until the first byte of the prompt arrives on the terminal WebSocket,
// warm (from the pool), cold (no pool) and for a 3-node session; baseline: `docker run --rm busybox true`.
import { type Bench, type Ctx, benchServer, closeServer, create, poolFull, remove } from './lib/context.ts';
import { promptAfter } from './lib/prompt.ts';
import { ms, ratio } from './lib/report.ts';
import { type Summary, summarize } from './lib/stats.ts';

type Run = { createMs: number; firstByteMs: number; promptMs: number };

/** One session from request to prompt; the session is removed afterwards (not timed). */
async function once(b: Bench, body: object): Promise<Run> {
  const t0 = performance.now();
  const c = await create(b, body);
  const createMs = performance.now() - t0;
  try {
    return { createMs, ...(await promptAfter(b.s.url, c.id, c.token, t0)) };
  } finally {
    await remove(b, c);
  }
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
  const warm = await benchServer(ctx, { BERTH_POOL_SIZE: String(ctx.flags.pool) });
  try {
    variants.push(await variant(ctx, warm, 'warm', {}, () => poolFull(warm, ctx.flags.pool)));
  } finally {
    await closeServer(warm, ctx);
  }
  const cold = await benchServer(ctx, { BERTH_POOL_SIZE: '0' });
  try {
    ctx.log(`ready: cold, ${ctx.flags.runs} runs`);
    variants.push(await variant(ctx, cold, 'cold', {}, async () => {}));
    ctx.log(`ready: 3 nodes (always cold: the pool holds single nodes), ${ctx.flags.runs} runs`);
    variants.push(await variant(ctx, cold, '3-node', { nodes: 3 }, async () => {}));
  } finally {
    await closeServer(cold, ctx);
  }
  const targets: Record<string, { ms: number; text: string }> = { warm: { ms: 500, text: 'p50 < 0.5 s' }, cold: { ms: 3000, text: 'p50 < 3 s' } };
  for (const v of variants) {
    for (const p of ['p50', 'p95', 'max'] as const) {
      const t = p === 'p50' ? targets[v.name] : undefined;
      ctx.rows.push({
        section: 'ready',
        what: `${v.name} session → prompt, ${p} (n=${v.berth.n})`,
        berth: ms(v.berth[p]),
        baseline: ms(v.baseline[p]),
        baselineIs: '`docker run --rm busybox true` on the host engine',
        ratio: ratio(v.berth[p], v.baseline[p]),
        ...(t ? { target: t.text, met: v.berth[p] < t.ms } : {}),
      });
    }
  }
  ctx.data.ready = variants;
}

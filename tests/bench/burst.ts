// 5. Workshop burst: an instructor pre-warms a workshop, then a class joins with the code, one learner every
// `spread / learners` seconds, and each waits for their prompt. Baseline: one learner joining alone into the
// same pre-warmed workshop just before (the best a learner can get from this server).
import { type Ctx, benchServer, closeServer, poolFull } from './lib/context.ts';
import { promptAfter } from './lib/prompt.ts';
import { ms, ratio } from './lib/report.ts';
import { summarize } from './lib/stats.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type Joined = { session: { id: string; token: string } };

export async function burst(ctx: Ctx) {
  const n = ctx.flags.learners;
  // Small engines, as a workshop on a 2-core machine would choose (the workshop tests use the same).
  const b = await benchServer(ctx, { BERTH_POOL_SIZE: '0', BERTH_SANDBOX_MEMORY: '1g', BERTH_SANDBOX_DISK: '2g' });
  const tokenFile = join(b.s.stateDir, 'first-admin-token');
  const admin = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  let workshop: string | undefined;
  try {
    if (!admin) throw new Error('the bench server wrote no first-run instructor token');
    const call = async <T>(path: string, init: Parameters<typeof b.s.api>[1], status: number): Promise<T> => {
      const r = await b.s.api(path, init);
      if (r.status !== status) throw new Error(`${init?.method ?? 'GET'} ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    };
    const w = await call<{ id: string; code: string }>(
      '/api/workshops',
      {
        method: 'POST',
        token: admin,
        json: { title: 'Bench burst', lessons: ['02-first-containers'], endsAt: new Date(Date.now() + 3600_000).toISOString(), capacity: n + 1 },
      },
      201,
    );
    workshop = w.id;
    ctx.log(`burst: pre-warming ${n + 1} engines`);
    const t0 = performance.now();
    await call(`/api/workshops/${w.id}/prewarm`, { method: 'POST', token: admin, json: { expectedLearners: n + 1 } }, 200);
    await poolFull(b, n + 1, 60_000 + n * 10_000);
    const prewarmMs = performance.now() - t0;

    const learner = async (name: string) => {
      const start = performance.now();
      const j = await call<Joined>('/api/join', { method: 'POST', json: { code: w.code, name } }, 201);
      const joinMs = performance.now() - start;
      return { joinMs, ...(await promptAfter(b.s.url, j.session.id, j.session.token, start)) };
    };
    const solo = await learner('Solo');
    ctx.log(`burst: ${n} learners joining over ${ctx.flags.spreadS} s`);
    const began = performance.now();
    const runs = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await sleep((i * ctx.flags.spreadS * 1000) / n);
        return learner(`Learner ${i + 1}`);
      }),
    );
    const spanMs = performance.now() - began;
    const prompt = summarize(runs.map((r) => r.promptMs));
    const join = summarize(runs.map((r) => r.joinMs));
    const baselineIs = 'one learner joining alone into the same pre-warmed workshop';
    for (const p of ['p50', 'p95', 'max'] as const) {
      ctx.rows.push({
        section: 'burst',
        what: `join → prompt, ${n} learners over ${ctx.flags.spreadS} s, ${p}`,
        berth: ms(prompt[p]),
        baseline: ms(solo.promptMs),
        baselineIs,
        ratio: ratio(prompt[p], solo.promptMs),
        ...(p === 'max' ? { target: `all ${n} reach a prompt`, met: runs.length === n } : {}),
      });
    }
    // The bound a class joining at once must meet (it used to sit in integration/workshops.test.ts): every seat
    // and session answered within 10 s. --spread-s 0 sends every join at once.
    ctx.rows.push({
      section: 'burst',
      what: `join answered (POST /api/join → 201), ${n} learners over ${ctx.flags.spreadS} s, max`,
      berth: ms(join.max),
      baseline: ms(solo.joinMs),
      baselineIs,
      ratio: ratio(join.max, solo.joinMs),
      target: 'every join answered within 10 s',
      met: join.max < 10_000,
    });
    ctx.rows.push({
      section: 'burst',
      what: `first join → last prompt (${n} learners)`,
      berth: ms(spanMs),
      baseline: `${ctx.flags.spreadS} s`,
      baselineIs: 'the time over which the joins were spread',
      ratio: ratio(spanMs, ctx.flags.spreadS * 1000),
    });
    ctx.rows.push({
      section: 'burst',
      what: `pre-warm ${n + 1} engines before the start`,
      berth: ms(prewarmMs),
      baseline: '–',
      baselineIs: 'none: the instructor does this before the class arrives',
      ratio: null,
    });
    ctx.data.burst = { learners: n, spreadS: ctx.flags.spreadS, prewarmMs, solo, prompt, join, spanMs };
  } finally {
    // Ending the workshop removes its sandboxes the way an instructor's "end" does; the sweep catches the rest.
    if (workshop && admin) await b.s.api(`/api/workshops/${workshop}/end`, { method: 'POST', token: admin }).catch(() => {});
    await closeServer(b, ctx);
  }
}

// The workshop HTTP routes. Instructor routes (/api/workshops/...) need an admin token; learners join at
// /api/join and report progress with their session token under /api/sessions/:id/...
import type { Context, Hono, Next } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { bearer } from '../auth.ts';
import { parseBytes } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { LessonCatalog } from '../lesson-catalog.ts';
import type { RateLimiter } from '../rate-limit.ts';
import type { Replays } from '../replays.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import { parseJson } from '../validate.ts';
import type { AdminAuth } from './admin-auth.ts';
import type { CapacityMeter } from './capacity.ts';
import { resultsCsv } from './csv.ts';
import type { WorkshopEvent, WorkshopService } from './service.ts';

import type { Env } from '../app.ts';

export type Workshops = {
  service: WorkshopService;
  auth: AdminAuth;
  capacity: CapacityMeter;
  joinFailures: RateLimiter;
  /** Joins per client address: each join may take a sandbox from the pool or start one. */
  joins: RateLimiter;
  publicOrigin?: string;
  manager: SandboxManager;
  lessons: LessonCatalog;
  replays: Replays;
};

const lessonId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,80}$/, 'a lesson id such as 02-first-containers');
const itemId = z.string().regex(/^[A-Za-z0-9][\w.-]{0,80}$/, 'an id of letters, digits, - _ .');
const when = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const limits = z.strictObject({
  memory: z.string().regex(/^\d+(\.\d+)?\s*[kKmMgG]?i?[bB]?$/, 'a size such as 512m or 2g').transform(parseBytes).optional(),
  cpus: z.number().positive().max(64).optional(),
  pids: z.number().int().min(64).max(1_000_000).optional(),
});
const createBody = z.strictObject({
  title: z.string().trim().min(1).max(120),
  lessons: z.array(lessonId).min(1).max(30),
  startsAt: when.optional(),
  endsAt: when,
  capacity: z.number().int().min(1).max(1000),
  expectedLearners: z.number().int().min(0).max(1000).optional(),
  limits: limits.optional(),
  nodesPerLearner: z.number().int().min(1).max(10).optional(),
  stuckMinutes: z.number().positive().max(24 * 60).optional(),
});
const patchBody = z.strictObject({
  title: z.string().trim().min(1).max(120).optional(),
  startsAt: when.optional(),
  endsAt: when.optional(),
  capacity: z.number().int().min(1).max(1000).optional(),
  expectedLearners: z.number().int().min(0).max(1000).optional(),
  stuckMinutes: z.number().positive().max(24 * 60).optional(),
});
const displayName = z.string().max(200).transform((s) => s.normalize('NFC').trim().replace(/\s+/g, ' '))
  .pipe(z.string().min(1, 'a name is needed').max(40, 'at most 40 characters').regex(/^[^\p{Cc}\p{Cf}<>]+$/u, 'letters, digits, spaces and punctuation only'));
const joinBody = z.strictObject({ code: z.string().min(4).max(20), name: displayName, key: z.string().max(100).optional() });
const progressBody = z.strictObject({
  lesson: lessonId,
  step: itemId.optional(),
  checksPassed: z.array(itemId).max(200).optional(),
  quiz: z.array(z.strictObject({
    id: itemId,
    answer: z.union([z.string().max(500), z.array(z.string().max(200)).max(8)]),
    correct: z.boolean().optional(),
  })).max(200).optional(),
  after: z.number().int().min(0).optional(),
});
const messageBody = z.strictObject({ text: z.string().trim().min(1).max(1000) });
const prewarmBody = z.strictObject({ expectedLearners: z.number().int().min(0).max(1000).optional() });
const learnerReplayBody = z.strictObject({ lesson: z.string().min(1).max(100), step: z.string().min(1).max(100), fresh: z.boolean().default(true) });

const MAX_BODY = 64 * 1024;

const cursor = (c: Context) => {
  const n = Number(c.req.query('after') ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
};

/** Routes that a browser opens without headers (EventSource, a download link) may carry a ticket instead. */
const TICKET_ROUTES = /^\/api\/workshops\/([a-z0-9]{4,40})\/(events|results\.csv)$/;

// Bodies here are small JSON; a bigger one is refused before it is read.
const limitBody = (maxSize: number) => bodyLimit({
  maxSize,
  onError: (c) => c.json({ error: { code: 'BODY_TOO_LARGE', message: `The request body is larger than ${maxSize} bytes.`, requestId: c.get('requestId') ?? '' } }, 413, { Connection: 'close' }),
});

export function mountWorkshops(app: Hono<Env>, ws: Workshops, clientAddress: (c: Context) => string) {
  const { service: svc, auth } = ws;
  const limit = limitBody(MAX_BODY);
  for (const path of ['/api/workshops', '/api/workshops/*', '/api/join', '/api/sessions/:id/progress']) app.use(path, limit);

  // ---- instructors ----
  async function admin(c: Context<Env>, next: Next) {
    if (auth.check(bearer(c.req.header('authorization')))) return next();
    const m = TICKET_ROUTES.exec(c.req.path);
    if (m && c.req.method === 'GET' && auth.useTicket(c.req.query('ticket'), m[1])) return next();
    throw new ApiError(401, 'UNAUTHORIZED', 'Instructor routes need an admin token: Authorization: Bearer <token> (learner tokens do not work here).');
  }
  app.use('/api/workshops', admin);
  app.use('/api/workshops/*', admin);

  const joinUrl = (c: Context, code: string) => `${ws.publicOrigin ?? new URL(c.req.url).origin}/join/?code=${code}`;
  const full = (c: Context, id: string) => {
    const w = svc.get(id);
    return { ...svc.view(w), joinUrl: joinUrl(c, w.code), pool: svc.pool() };
  };

  app.post('/api/workshops', async function createWorkshop(c) {
    const b = await parseJson(c, createBody);
    const w = svc.create({
      ...b,
      limits: b.limits && { memoryBytes: b.limits.memory, nanoCpus: b.limits.cpus === undefined ? undefined : Math.round(b.limits.cpus * 1e9), pids: b.limits.pids },
    });
    return c.json(full(c, w.id), 201);
  });
  app.get('/api/workshops', (c) => c.json({ workshops: svc.db.workshops().map((w) => ({ ...svc.view(w), joinUrl: joinUrl(c, w.code) })) }));
  app.get('/api/workshops/:id', (c) => {
    const w = svc.get(c.req.param('id'));
    return c.json({ ...full(c, w.id), learnerRows: svc.rows(w), messages: svc.messages(w) });
  });
  app.patch('/api/workshops/:id', async (c) => {
    const w = svc.update(svc.get(c.req.param('id')), await parseJson(c, patchBody));
    return c.json(full(c, w.id));
  });
  app.post('/api/workshops/:id/end', async (c) => {
    const w = await svc.end(svc.get(c.req.param('id')), 'instructor');
    return c.json(full(c, w.id));
  });
  app.get('/api/workshops/:id/capacity', async function capacity(c) {
    const w = svc.get(c.req.param('id'));
    return c.json({ ...(await ws.capacity.forWorkshop(w, svc.db.seated(w.id), c.req.query('refresh') === '1')), pool: svc.pool() });
  });
  app.post('/api/workshops/:id/prewarm', async (c) => {
    const { expectedLearners } = await parseJson(c, prewarmBody);
    return c.json({ pool: svc.prewarm(svc.get(c.req.param('id')), expectedLearners) });
  });
  app.post('/api/workshops/:id/tickets', (c) => c.json(auth.issueTicket(svc.get(c.req.param('id')).id), 201));
  app.post('/api/workshops/:id/messages', async (c) => {
    const { text } = await parseJson(c, messageBody);
    return c.json(svc.broadcast(svc.get(c.req.param('id')), text), 201);
  });
  app.get('/api/workshops/:id/messages', (c) => c.json({ messages: svc.messages(svc.get(c.req.param('id')), cursor(c)) }));
  app.get('/api/workshops/:id/learners/:learner', (c) => {
    const w = svc.get(c.req.param('id'));
    const l = svc.learnerOf(w, c.req.param('learner'));
    return c.json({ ...svc.row(w, l), sessionId: l.sessionId, checks: svc.db.checks(l.id), quiz: svc.db.quiz(l.id) });
  });
  // The terminals the learner has open (their dtach sockets), so the instructor is offered only real tabs.
  app.get('/api/workshops/:id/learners/:learner/tabs', async function learnerTabs(c) {
    const w = svc.get(c.req.param('id'));
    return c.json({ nodes: await svc.tabs(svc.learnerOf(w, c.req.param('learner'))) });
  });
  app.post('/api/workshops/:id/learners/:learner/reset', async (c) => {
    const w = svc.get(c.req.param('id'));
    return c.json(await svc.reset(w, c.req.param('learner')));
  });
  // An instructor brings a learner's sandbox to a step: rebuilt fresh (unless fresh is false), then
  // replayed, exactly as the learner's own Skip button does. The admin check above covers these routes.
  const learnerSession = (c: Context<Env>) => {
    const l = svc.learnerOf(svc.get(c.req.param('id') ?? ''), c.req.param('learner') ?? '');
    const s = l.sessionId ? ws.manager.get(l.sessionId) : undefined;
    if (!s) throw new ApiError(409, 'NO_SANDBOX', `${l.name} has no sandbox any more.`);
    return s;
  };
  app.post('/api/workshops/:id/learners/:learner/replay', limitBody(4 * 1024), async function replayForLearner(c) {
    const { fresh, ...to } = await parseJson(c, learnerReplayBody);
    learnerSession(c);
    ws.lessons.replayPlan(to.lesson, to.step); // an unknown lesson or step: 404 before the sandbox is rebuilt
    if (fresh) await svc.reset(svc.get(c.req.param('id')), c.req.param('learner'));
    return c.json(ws.replays.start(learnerSession(c), to.lesson, to.step), 202);
  });
  app.get('/api/workshops/:id/learners/:learner/replay', (c) => c.json(ws.replays.view(learnerSession(c).id)));

  app.get('/api/workshops/:id/results.csv', (c) => {
    const w = svc.get(c.req.param('id'));
    return c.body(resultsCsv(svc, w), 200, {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="workshop-${w.code}-results.csv"`,
    });
  });

  app.get('/api/workshops/:id/events', function events(c) {
    const w = svc.get(c.req.param('id'));
    return streamSSE(c, async (stream) => {
      const queue: WorkshopEvent[] = [];
      let wake: (() => void) | null = null;
      let closed = false;
      const off = svc.subscribe(w.id, (e) => {
        // A listener that cannot keep up is cut off; its EventSource comes back and starts from a snapshot.
        if (queue.length > 5000) { closed = true; stream.abort(); }
        queue.push(e);
        wake?.();
      });
      stream.onAbort(() => { closed = true; off(); wake?.(); });
      try {
        const now = svc.get(w.id);
        await stream.writeSSE({ event: 'snapshot', data: JSON.stringify({ workshop: { ...full(c, w.id) }, learners: svc.rows(now), messages: svc.messages(now), serverTime: new Date().toISOString() }) });
        while (!closed) {
          if (!queue.length) {
            const quiet = await new Promise<boolean>((r) => {
              const t = setTimeout(() => { wake = null; r(true); }, 15_000);
              wake = () => { clearTimeout(t); wake = null; r(false); };
            });
            // A comment line keeps proxies from closing an idle stream.
            if (quiet && !closed) await stream.write(': keep-alive\n\n');
            continue;
          }
          const e = queue.shift()!;
          await stream.writeSSE({ event: e.type, data: JSON.stringify(e.data) });
        }
      } finally {
        off();
      }
    });
  });

  // ---- learners ----
  app.get('/api/join/:code', (c) => {
    const client = clientAddress(c);
    refuseGuessers(client);
    try { return c.json(svc.preview(c.req.param('code'))); } catch (err) { countFailure(err, client); throw err; }
  });
  app.post('/api/join', async function join(c) {
    const client = clientAddress(c);
    refuseGuessers(client);
    if (!ws.joins.allow(client)) throw new ApiError(429, 'RATE_LIMITED', 'Too many joins from this address. Wait a minute and try again.');
    const body = await parseJson(c, joinBody);
    try { return c.json(await svc.join(body, client), 201); } catch (err) { countFailure(err, client); throw err; }
  });

  // Join codes are short: an address that keeps guessing wrong ones is stopped for a minute.
  function refuseGuessers(client: string) {
    if (ws.joinFailures.exhausted(client)) {
      throw new ApiError(429, 'RATE_LIMITED', 'Too many wrong workshop codes from this address. Wait a minute and try again.');
    }
  }
  function countFailure(err: unknown, client: string) {
    if (err instanceof ApiError && err.code === 'JOIN_CODE_INVALID') ws.joinFailures.allow(client);
  }

  app.get('/api/sessions/:id/workshop', (c) => c.json(svc.info(c.get('session'), cursor(c))));
  app.post('/api/sessions/:id/workshop/reset', async (c) => c.json(await svc.resetOwn(c.get('session'))));
  app.post('/api/sessions/:id/progress', async function progress(c) {
    return c.json(await svc.progress(c.get('session'), await parseJson(c, progressBody)));
  });
  // Results of the server's own checks and exec count for a workshop learner without the site doing anything.
  app.use('/api/sessions/:id/checks/:checkId', async (c, next) => {
    await next();
    if (c.req.method !== 'POST' || c.res.status !== 200) return;
    const r = z.object({ id: z.string(), passed: z.boolean() }).safeParse(await c.res.clone().json());
    const lesson = z.object({ lesson: z.string() }).safeParse(JSON.parse(await c.req.text()));
    if (r.success && lesson.success) svc.recordCheck(c.get('session'), lesson.data.lesson, r.data.id, r.data.passed);
  });
  app.use('/api/sessions/:id/exec', async (c, next) => {
    await next();
    if (c.req.method === 'POST' && c.res.status === 200) svc.activity(c.get('session'));
  });
}

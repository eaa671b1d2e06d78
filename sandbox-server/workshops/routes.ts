// The workshop HTTP routes. Instructor routes (/api/workshops/...) need an admin token; learners join at
// /api/join and report progress with their session token under /api/sessions/:id/...
import type { Context, Hono, MiddlewareHandler, Next } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { bearer } from '../auth.ts';
import { mountContract } from '../contract.ts';
import { ApiError } from '../errors.ts';
import { EventQueue } from '../event-queue.ts';
import type { LessonCatalog } from '../lesson-catalog.ts';
import type { RateLimiter } from '../rate-limit.ts';
import type { Replays } from '../replays.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { AdminAuth } from './admin-auth.ts';
import type { CapacityMeter } from './capacity.ts';
import { workshopRoutes } from './api.ts';
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

const MAX_BODY = 64 * 1024;

/** A message cursor: anything but an id reads as 0 (all messages). */
const cursor = (after: string | undefined) => {
  const n = Number(after ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
};

/** Routes that a browser opens without headers (EventSource, a download link) may carry a ticket instead. */
const TICKET_ROUTES = /^\/api\/workshops\/([a-z0-9]{4,40})\/(events|results\.csv)$/;

export function mountWorkshops(app: Hono<Env>, ws: Workshops, clientAddress: (c: Context) => string, limitBody: (maxSize: number) => MiddlewareHandler<Env>) {
  const { service: svc, auth } = ws;
  // Bodies here are small JSON; a bigger one is refused before it is read (on every route of these paths).
  const limit = limitBody(MAX_BODY);
  const on = mountContract(app, workshopRoutes, limitBody);
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

  on('POST /api/workshops', async (c, io) => {
    const b = await io.body();
    const w = svc.create({
      ...b,
      limits: b.limits && {
        memoryBytes: b.limits.memory,
        nanoCpus: b.limits.cpus === undefined ? undefined : Math.round(b.limits.cpus * 1e9),
        pids: b.limits.pids,
      },
    });
    return io.json(201, full(c, w.id));
  });
  on('GET /api/workshops', (c, io) => io.json(200, { workshops: svc.db.workshops().map((w) => ({ ...svc.view(w), joinUrl: joinUrl(c, w.code) })) }));
  on('GET /api/workshops/:id', (c, io) => {
    const w = svc.get(io.params().id);
    return io.json(200, { ...full(c, w.id), learnerRows: svc.rows(w), messages: svc.messages(w) });
  });
  on('PATCH /api/workshops/:id', async (c, io) => {
    const w = svc.update(svc.get(io.params().id), await io.body());
    return io.json(200, full(c, w.id));
  });
  on('POST /api/workshops/:id/end', async (c, io) => {
    const w = await svc.end(svc.get(io.params().id), 'instructor');
    return io.json(200, full(c, w.id));
  });
  on('GET /api/workshops/:id/capacity', async (_c, io) => {
    const w = svc.get(io.params().id);
    return io.json(200, { ...(await ws.capacity.forWorkshop(w, svc.db.seated(w.id), io.query().refresh === '1')), pool: svc.pool() });
  });
  on('POST /api/workshops/:id/prewarm', async (_c, io) => {
    const { expectedLearners } = await io.body();
    return io.json(200, { pool: svc.prewarm(svc.get(io.params().id), expectedLearners) });
  });
  on('POST /api/workshops/:id/tickets', (_c, io) => io.json(201, auth.issueTicket(svc.get(io.params().id).id)));
  on('POST /api/workshops/:id/messages', async (_c, io) => {
    const { text } = await io.body();
    return io.json(201, svc.broadcast(svc.get(io.params().id), text));
  });
  on('GET /api/workshops/:id/messages', (_c, io) => io.json(200, { messages: svc.messages(svc.get(io.params().id), cursor(io.query().after)) }));
  on('GET /api/workshops/:id/learners/:learner', (_c, io) => {
    const p = io.params();
    const w = svc.get(p.id);
    const l = svc.learnerOf(w, p.learner);
    return io.json(200, { ...svc.row(w, l), sessionId: l.sessionId, checks: svc.db.checks(l.id), quiz: svc.db.quiz(l.id) });
  });
  // The terminals the learner has open (their dtach sockets), so the instructor is offered only real tabs.
  on('GET /api/workshops/:id/learners/:learner/tabs', async (_c, io) => {
    const p = io.params();
    const w = svc.get(p.id);
    return io.json(200, { nodes: await svc.tabs(svc.learnerOf(w, p.learner)) });
  });
  on('POST /api/workshops/:id/learners/:learner/reset', async (_c, io) => {
    const p = io.params();
    const w = svc.get(p.id);
    return io.json(200, await svc.reset(w, p.learner));
  });
  // An instructor brings a learner's sandbox to a step: rebuilt fresh (unless fresh is false), then
  // replayed, exactly as the learner's own Skip button does. The admin check above covers these routes.
  const learnerSession = (p: { id: string; learner: string }) => {
    const l = svc.learnerOf(svc.get(p.id), p.learner);
    const s = l.sessionId ? ws.manager.get(l.sessionId) : undefined;
    if (!s) throw new ApiError(409, 'NO_SANDBOX', `${l.name} has no sandbox any more.`);
    return s;
  };
  on('POST /api/workshops/:id/learners/:learner/replay', async (_c, io) => {
    const { fresh, ...to } = await io.body();
    const p = io.params();
    learnerSession(p);
    ws.lessons.replayPlan(to.lesson, to.step); // an unknown lesson or step: 404 before the sandbox is rebuilt
    if (fresh) await svc.reset(svc.get(p.id), p.learner);
    return io.json(202, ws.replays.start(learnerSession(p), to.lesson, to.step));
  });
  on('GET /api/workshops/:id/learners/:learner/replay', (_c, io) => io.json(200, ws.replays.view(learnerSession(io.params()).id)));

  on('GET /api/workshops/:id/results.csv', (c, io) => {
    const w = svc.get(io.params().id);
    return c.body(resultsCsv(svc, w), 200, {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="workshop-${w.code}-results.csv"`,
    });
  });

  on('GET /api/workshops/:id/events', (c, io) => {
    const w = svc.get(io.params().id);
    return streamSSE(c, async (stream) => {
      const queue = new EventQueue<WorkshopEvent>(stream, 5000);
      const off = svc.subscribe(w.id, (e) => queue.push(e));
      stream.onAbort(off);
      try {
        const now = svc.get(w.id);
        await stream.writeSSE({
          event: 'snapshot',
          data: JSON.stringify({ workshop: { ...full(c, w.id) }, learners: svc.rows(now), messages: svc.messages(now), serverTime: new Date().toISOString() }),
        });
        for await (const e of queue.events(15_000)) {
          if (e) await stream.writeSSE({ event: e.type, data: JSON.stringify(e.data) });
          // A comment line keeps proxies from closing an idle stream.
          else await stream.write(': keep-alive\n\n');
        }
      } finally {
        off();
      }
    });
  });

  // ---- learners ----
  on('GET /api/join/:code', (c, io) => {
    const client = clientAddress(c);
    refuseGuessers(client);
    try {
      return io.json(200, svc.preview(io.params().code));
    } catch (err) {
      countFailure(err, client);
      throw err;
    }
  });
  on('POST /api/join', async (c, io) => {
    const client = clientAddress(c);
    refuseGuessers(client);
    if (!ws.joins.allow(client)) throw new ApiError(429, 'RATE_LIMITED', 'Too many joins from this address. Wait a minute and try again.');
    const body = await io.body();
    try {
      return io.json(201, await svc.join(body, client));
    } catch (err) {
      countFailure(err, client);
      throw err;
    }
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

  on('GET /api/sessions/:id/workshop', (c, io) => io.json(200, svc.info(c.get('session'), cursor(io.query().after))));
  on('POST /api/sessions/:id/workshop/reset', async (c, io) => io.json(200, await svc.resetOwn(c.get('session'))));
  on('POST /api/sessions/:id/progress', async (c, io) => io.json(200, await svc.progress(c.get('session'), await io.body())));
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

// The HTTP API. createApp does no I/O, so tests can build it around real or test dependencies.
import { Readable } from 'node:stream';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { requestId } from 'hono/request-id';
import { sessionRoutes } from './api.ts';
import { bearer } from './auth.ts';
import { mountContract, type Contract } from './contract.ts';
import { ApiError, errorBody } from './errors.ts';
import type { LessonCatalog } from './lesson-catalog.ts';
import type { Metrics } from './metrics.ts';
import { openapiDocument } from './openapi.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { Replays } from './replays.ts';
import type { SandboxManager } from './sandboxes/manager.ts';
import type { SandboxProvider } from './engine/provider.ts';
import type { SessionRow } from './store.ts';
import { Files, archiveScript, checkPath, shq } from './sandboxes/files.ts';
import { mountSessionFeed, type LearnerFeed } from './sandboxes/session-feed.ts';
import type { Preview } from './preview/proxy.ts';
import type { SandboxFacts } from '../lessons/lib/schema.ts';

export type Env = { Variables: { session: SessionRow; requestId: string } };

/**
 * A feature beside the core API (workshops). Its routes are mounted after the session token check (routes under
 * /api/sessions/:id/ find c.get('session')) and before the core session routes (its middleware may wrap them: a
 * workshop records its learners' check results) and the /api 404. Its contract (contract.ts) joins the OpenAPI document.
 */
export type Feature = {
  mount: (app: Hono<Env>, tools: { clientAddress: (c: Context) => string; limitBody: (maxSize: number) => MiddlewareHandler<Env> }) => void;
  routes: Contract;
  /** A session the feature keeps alive itself (a workshop learner's): no idle limit, no extend. */
  holds?: (s: SessionRow) => boolean;
  /** Further events of a session's feed (the workshop's news). */
  feed?: LearnerFeed;
};

export type AppDeps = {
  manager: SandboxManager;
  /** For streaming archives (the optional streamOut). */
  provider: SandboxProvider;
  lessons: LessonCatalog;
  metrics: Metrics;
  createLimiter: RateLimiter;
  log: { error: (o: object, m: string) => void };
  clientAddress: (c: Context) => string;
  serveSite?: (app: Hono<Env>) => void;
  preview: Preview;
  replays: Replays;
  fileMax: number;
  features?: Feature[];
  /** Whether a bearer token may read /metrics (they name sessions' activity and the host's load). */
  metricsAuthorized?: (token: string | undefined) => boolean;
  /** What this server's sandboxes are (sandbox-facts.ts); public, for the site's lesson pages. */
  sandboxFacts: SandboxFacts;
};

export function createApp(deps: AppDeps) {
  const { manager, lessons, metrics } = deps;
  const app = new Hono<Env>();
  app.use(requestId());

  app.onError((err, c) => {
    const id = c.get('requestId') ?? '';
    if (err instanceof ApiError) {
      metrics.errors.inc({ code: err.code });
      // A learner sees the message; the operator needs the cause of anything that is the server's fault.
      if (err.status >= 500) deps.log.error({ err, requestId: id, path: c.req.path }, err.message);
      return c.json(errorBody(err.code, err.message, id), err.status);
    }
    metrics.errors.inc({ code: 'INTERNAL' });
    deps.log.error({ err, requestId: id, path: c.req.path }, 'unhandled error');
    return c.json(errorBody('INTERNAL', 'Something went wrong on the server. It has been logged.', id), 500);
  });
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `No route ${c.req.method} ${c.req.path}.`, c.get('requestId') ?? ''), 404));

  const limitBody = (maxSize: number) => refuseLargeBodies(maxSize, () => metrics.errors.inc({ code: 'BODY_TOO_LARGE' }));

  const on = mountContract(app, sessionRoutes, limitBody);
  on('GET /healthz', (_c, io) => io.json(200, { ok: true }));
  on('GET /metrics', async (c) => {
    if (!deps.metricsAuthorized?.(bearer(c.req.header('authorization')))) {
      throw new ApiError(401, 'UNAUTHORIZED', 'Metrics need a metrics or instructor token (Authorization: Bearer <token>).');
    }
    const n = manager.counts();
    metrics.sandboxes.set({ state: 'session' }, n.sessions);
    metrics.sandboxes.set({ state: 'pool-ready' }, n.poolReady);
    metrics.sandboxes.set({ state: 'starting' }, n.starting);
    // Sessions (counted above too) whose machine went away: an operator's cue to bring it back or remove it.
    metrics.sandboxes.set({ state: 'lost' }, n.lost);
    // Sessions (counted above too) ended because their machine was drained for maintenance.
    metrics.sandboxes.set({ state: 'maintenance' }, n.maintenance);
    return c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });
  const features = deps.features ?? [];
  const document = openapiDocument([sessionRoutes, ...features.map((f) => f.routes)]);
  on('GET /api/openapi.json', (_c, io) => io.json(200, document));
  on('GET /api/sandbox-facts', (_c, io) => io.json(200, deps.sandboxFacts));

  on('POST /api/sessions', async (c, io) => {
    const client = deps.clientAddress(c);
    if (!deps.createLimiter.allow(client)) {
      throw new ApiError(429, 'RATE_LIMITED', 'Too many new sandboxes from this address. Wait a minute and try again.');
    }
    const body = await io.body();
    if (body.lesson) lessons.seedFiles(body.lesson); // unknown lesson: 404 before any engine work
    const created = await manager.create({ ...body, client });
    return io.json(201, created);
  });

  // Self-check questions are judged here, so the pages carry no answers (and a workshop's scores are the server's).
  on('POST /api/lessons/:lesson/quizzes/:quiz/answer', async (_c, io) => {
    const { answer } = await io.body();
    if (!lessons.answer) throw new ApiError(404, 'NOT_FOUND', 'This server does not judge answers.');
    const p = io.params();
    return io.json(200, lessons.answer(p.lesson, p.quiz, answer));
  });

  // Every route below belongs to one session and needs its token.
  app.use('/api/sessions/:id/*', sessionAuth);
  app.use('/api/sessions/:id', sessionAuth);
  async function sessionAuth(c: Context<Env>, next: () => Promise<void>) {
    // A lost session (its machine went away, or was drained for maintenance) can still be deleted; everything else
    // about it is 503 MACHINE_LOST (or MACHINE_MAINTENANCE).
    const deleting = c.req.method === 'DELETE' && /^\/api\/sessions\/[^/]+\/?$/.test(c.req.path);
    c.set('session', manager.authorize(c.req.param('id') ?? '', bearer(c.req.header('authorization')), deleting));
    await next();
  }
  // Features' routes (instructor routes, joining, workshop learners' progress), after sessionAuth.
  for (const f of features) f.mount(app, { clientAddress: deps.clientAddress, limitBody });

  const inWorkshop = (s: SessionRow) => features.some((f) => f.holds?.(s));
  on('GET /api/sessions/:id', (c, io) => {
    const s = c.get('session');
    // A workshop keeps its learners' sandboxes alive until it ends: no idle limit to show them.
    return io.json(200, { ...manager.view(s), ...(inWorkshop(s) ? { idleExpiresAt: null, workshop: true as const } : {}) });
  });
  on('DELETE /api/sessions/:id', async (c) => {
    await manager.remove(c.get('session').id);
    return c.body(null, 204);
  });
  on('POST /api/sessions/:id/extend', (c, io) => {
    const s = c.get('session');
    if (inWorkshop(s)) throw new ApiError(409, 'WORKSHOP_SESSION', 'A workshop sandbox lasts as long as the workshop; only the instructor can change that.');
    manager.extend(s);
    const v = manager.view(manager.get(s.id) ?? s);
    return io.json(200, { expiresAt: v.expiresAt, idleExpiresAt: v.idleExpiresAt });
  });

  on('POST /api/sessions/:id/exec', async (c, io) => {
    const body = await io.body();
    const r = await manager.exec(c.get('session'), body.cmd, body.node, body.timeoutMs ?? 30_000);
    return io.json(200, r);
  });

  on('POST /api/sessions/:id/checks/:checkId', async (c, io) => {
    const { lesson } = await io.body();
    const s = c.get('session');
    const check = lessons.check(lesson, io.params().checkId);
    // A check only reads state, so a provider may run it again after a transient failure.
    const r = await manager.exec(s, check.script, check.node, 30_000);
    const passed = r.exitCode === 0;
    const detail = (r.stdout + r.stderr).trim().split('\n').slice(-5).join('\n');
    return io.json(200, { id: check.id, passed, message: passed ? (check.pass ?? 'Passed.') : check.fail, ...(detail ? { detail } : {}) });
  });

  // Skip to a step: the reference commands of every earlier step run in the sandbox, in the background.
  on('POST /api/sessions/:id/replay', async (c, io) => {
    const { lesson, step } = await io.body();
    return io.json(202, deps.replays.start(c.get('session'), lesson, step));
  });
  on('GET /api/sessions/:id/replay', (c, io) => io.json(200, deps.replays.view(c.get('session').id)));
  // Show me: what a learner would type for one step (the page types it into the terminal).
  on('GET /api/sessions/:id/lessons/:lesson/steps/:step/reference', (_c, io) => {
    const { lesson, step } = io.params();
    return io.json(200, { lesson, step, commands: lessons.reference(lesson, step) });
  });

  on('POST /api/sessions/:id/nodes', async (c, io) => io.json(201, await manager.addNode(c.get('session'))));
  on('DELETE /api/sessions/:id/nodes/:node', async (c, io) => {
    await manager.removeNode(c.get('session'), io.params().node);
    return c.body(null, 204);
  });

  // The editor's file API, inside the learner's workspace, as the learner.
  const files = (c: Context<Env>, q: { path: string; node?: string }) => {
    const s = c.get('session');
    const node = manager.node(s, q.node);
    return { path: q.path, api: new Files((cmd, o) => manager.run(s, node, cmd, o), deps.fileMax) };
  };
  on('GET /api/sessions/:id/files', async (c, io) => {
    const f = files(c, io.query());
    return io.json(200, await f.api.read(f.path));
  });
  // base64 grows a file by a third; the JSON around it is small.
  on(
    'PUT /api/sessions/:id/files',
    async (c, io) => {
      const f = files(c, io.query());
      const body = await io.body();
      return io.json(200, await f.api.write(f.path, Buffer.from(body.content, body.encoding === 'base64' ? 'base64' : 'utf8')));
    },
    Math.ceil(deps.fileMax * 1.4) + 16 * 1024,
  );
  on('POST /api/sessions/:id/files', async (c, io) => {
    const f = files(c, io.query());
    await io.body();
    return io.json(201, await f.api.mkdir(f.path));
  });
  on('DELETE /api/sessions/:id/files', async (c, io) => {
    const f = files(c, io.query());
    await f.api.remove(f.path);
    return c.body(null, 204);
  });

  // A folder of the workspace (the whole workspace by default) as a tar, streamed from the node.
  on('GET /api/sessions/:id/archive', async (c, io) => {
    const q = io.query();
    const s = c.get('session');
    const node = manager.node(s, q.node);
    const provider = deps.provider;
    if (!provider.streamOut) throw new ApiError(404, 'NOT_FOUND', 'This server cannot stream archives.');
    const script = `set -- ${shq(checkPath(q.path))}\n${archiveScript}`;
    // The path is checked first, so that a wrong one is a JSON error and not an empty download.
    const r = await manager.run(s, node, `${script}\necho "$n"`, { timeoutMs: 15_000, maxOutput: 4096 });
    if (r.exitCode === 92) throw new ApiError(404, 'FILE_NOT_FOUND', 'No such folder.');
    if (r.exitCode !== 0) throw new ApiError(400, 'PATH_OUTSIDE_WORKSPACE', 'The folder must be inside the workspace.');
    const name = r.stdout.trim().replace(/[^\w.-]+/g, '_') || 'workspace';
    const out = await provider.streamOut(s.id, node, `${script}\nexec tar -c -C "$d" --exclude=./.local/share/docker --exclude=./.cache -- "$b"`);
    manager.touch(s.id);
    return c.body(Readable.toWeb(out as Readable) as ReadableStream, 200, {
      'Content-Type': 'application/x-tar',
      'Content-Disposition': `attachment; filename="${name}.tar"`,
      'Cache-Control': 'no-store',
    });
  });

  // Published ports and the links that open them in the browser.
  const decorate = (s: SessionRow, ports: { node: string; port: number; container: string; image: string }[], origin: URL) =>
    ports.map((p) => {
      const shared = manager.isShared(s.id, p.node, p.port);
      return { ...p, shared, ...deps.preview.links(origin, s.id, p.node, p.port, shared) };
    });
  const portsOf = async (s: SessionRow, origin: URL) => decorate(s, await manager.publishedPorts(s), origin);
  on('GET /api/sessions/:id/ports', async (c, io) => io.json(200, { ports: await portsOf(c.get('session'), new URL(c.req.url)) }));
  // The same, pushed when the node's engine starts or stops a container, with the workshop's news.
  mountSessionFeed(app, {
    manager,
    provider: deps.provider,
    ports: portsOf,
    decorate,
    log: deps.log,
    news: features.flatMap((f) => (f.feed ? [f.feed] : [])),
  });
  on('POST /api/sessions/:id/ports/:node/:port/share', async (c, io) => {
    const s = c.get('session');
    const node = manager.node(s, c.req.param('node'));
    const { port } = io.params();
    const { shared } = await io.body();
    manager.setShared(s.id, node, port, shared);
    return io.json(200, { shared, ...deps.preview.links(new URL(c.req.url), s.id, node, port, shared) });
  });

  app.all('/api/*', (c) => c.json(errorBody('NOT_FOUND', `No route ${c.req.method} ${c.req.path}.`, c.get('requestId') ?? ''), 404));
  deps.serveSite?.(app);
  return app;
}

/**
 * Refuses a body larger than maxSize with 413 BODY_TOO_LARGE, then closes the connection (`Connection: close`: the
 * rest of the body is not parsed, so nothing says where a next request would begin). The client may still be sending
 * (a body announced too large is refused before any of it is read, a chunked one as soon as it passes the limit):
 * answering at once and closing the socket under it makes the client meet a reset and report a failed connection
 * instead of this answer. So the rest is read and dropped first (dropRest). Like hono's bodyLimit otherwise: a body
 * within its announced length is passed on unread (Node's parser holds it to that length), a chunked one buffered.
 */
export function refuseLargeBodies<E extends Env>(maxSize: number, counted: () => void): MiddlewareHandler<E> {
  const refuse = async (c: Context<E>, rest: ReadableStreamDefaultReader<Uint8Array>) => {
    counted();
    await dropRest(rest);
    return c.json(errorBody('BODY_TOO_LARGE', `The request body is larger than ${maxSize} bytes.`, c.get('requestId') ?? ''), 413, { Connection: 'close' });
  };
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const length = c.req.raw.headers.has('transfer-encoding') ? null : c.req.raw.headers.get('content-length');
    if (length !== null) return Number.parseInt(length, 10) > maxSize ? refuse(c, body.getReader()) : next();
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    for (let size = 0; ; ) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxSize) return refuse(c, reader);
      chunks.push(value);
    }
    c.req.raw = new Request(c.req.raw, { body: Buffer.concat(chunks) });
    return next();
  };
}

/** The most of a refused body that is read and dropped, and for how long, before the answer goes anyway. */
const DROP_MAX_BYTES = 64 * 1024 ** 2;
const DROP_MAX_MS = 10_000;

/** Reads and drops what is left of a refused body, up to DROP_MAX_BYTES or DROP_MAX_MS, then lets the stream go. */
async function dropRest(rest: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(() => r('late'), DROP_MAX_MS);
  });
  try {
    for (let read = 0; read <= DROP_MAX_BYTES; ) {
      const next = await Promise.race([rest.read(), late]);
      if (next === 'late' || next.done) break;
      read += next.value.length;
    }
  } catch {
    // The client went away: nothing is left to drop.
  } finally {
    clearTimeout(timer);
    rest.cancel().catch(() => {});
  }
}

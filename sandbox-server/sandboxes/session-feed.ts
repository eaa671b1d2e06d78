// GET /api/sessions/:id/events: what changes under a learner's page, pushed as server-sent events
// instead of polled. `ports` when the node's own engine starts or stops a container (engine/ports-watch.ts,
// through the provider's optional streamOut; without it the page keeps polling), `maintenance` when the sandbox's
// machine is being drained (when it goes down), and for a workshop learner `workshop`,
// `message` (broadcasts) and `watch` (the instructor watching or typing). The page reads it with
// fetch (EventSource cannot send the Authorization header), so the token never sits in a URL.
import type { Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { PublishedPort, SandboxProvider } from '../engine/provider.ts';
import type { SessionRow } from '../store.ts';
import type { SandboxManager } from './manager.ts';
import { EventQueue } from '../event-queue.ts';
import { watchPorts } from '../engine/ports-watch.ts';

export type FeedEvent = { event: string; data: unknown };
/** Subscribes a workshop learner's session to its workshop's events; null for a session outside one. */
export type LearnerFeed = (s: SessionRow, after: number, push: (e: FeedEvent) => void) => (() => void) | null;

type Env = { Variables: { session: SessionRow; requestId: string } };

export type FeedDeps = {
  manager: SandboxManager;
  provider: SandboxProvider;
  ports: (s: SessionRow, origin: URL) => Promise<unknown[]>;
  /** Adds the preview links to ports a node reported. */
  decorate: (s: SessionRow, ports: (PublishedPort & { node: string })[], origin: URL) => unknown[];
  /** Features' news for a session (the workshop's, for a workshop learner). */
  news: LearnerFeed[];
  log: { error: (o: object, m: string) => void };
};

/** How often a quiet stream says it is alive; also when a session that ended without a word is found gone. */
export const KEEPALIVE_MS = 15_000;

export function mountSessionFeed(app: Hono<Env>, deps: FeedDeps) {
  // A session lost with its machine is told at once (`gone`; the page then reads MACHINE_LOST and its message).
  const onLost = new Map<string, Set<() => void>>();
  // A session whose machine begins (or stops) draining for maintenance is told when it goes down (`maintenance`).
  const onDrain = new Map<string, Set<() => void>>();
  deps.manager.listen((event, d) => {
    if (event === 'lost' && d.id) for (const tell of onLost.get(d.id) ?? []) tell();
    if (event === 'draining' && d.id) for (const tell of onDrain.get(d.id) ?? []) tell();
  });
  const maintenance = (id: string) => {
    const m = deps.manager.maintenance(id);
    return { event: 'maintenance', data: { at: m && !m.ended ? new Date(m.deadline).toISOString() : null } };
  };
  app.get('/api/sessions/:id/events', function sessionEvents(c: Context<Env>) {
    const s = c.get('session');
    const origin = new URL(c.req.url);
    const after = Number(c.req.query('after') ?? 0);
    return streamSSE(c, async (stream) => {
      const queue = new EventQueue<FeedEvent>(stream, 1000);
      const push = (e: FeedEvent) => queue.push(e);
      const stops: (() => void)[] = [];
      const tell = () => push({ event: 'gone', data: {} });
      const drain = () => push(maintenance(s.id));
      for (const [map, fn] of [
        [onLost, tell],
        [onDrain, drain],
      ] as const) {
        map.set(s.id, (map.get(s.id) ?? new Set()).add(fn));
        stops.push(() => {
          map.get(s.id)?.delete(fn);
          if (!map.get(s.id)?.size) map.delete(s.id);
        });
      }

      // ---- ports, from the learner engine's events ----
      const { provider } = deps;
      let mode: 'push' | 'poll' = 'poll';
      if (provider.streamOut) {
        const watchable = { run: provider.run.bind(provider), streamOut: provider.streamOut.bind(provider) };
        const byNode = new Map<string, PublishedPort[]>();
        const send = () =>
          push({
            event: 'ports',
            data: {
              ports: deps.decorate(
                s,
                s.nodes.flatMap((n) => (byNode.get(n) ?? []).map((p) => ({ node: n, ...p }))),
                origin,
              ),
            },
          });
        const watched = await Promise.allSettled(
          s.nodes.map((n) =>
            watchPorts(watchable, s.id, n, (ports) => {
              byNode.set(n, ports);
              // The first listing of every node makes one list; after that each change is sent as it comes.
              if (byNode.size === s.nodes.length) send();
            }),
          ),
        );
        for (const w of watched) if (w.status === 'fulfilled') stops.push(w.value);
        if (watched.every((w) => w.status === 'fulfilled')) mode = 'push';
      }
      push({ event: 'hello', data: { ports: mode, nodes: s.nodes } });
      if (deps.manager.maintenance(s.id)) push(maintenance(s.id));
      if (mode === 'poll') {
        try {
          push({ event: 'ports', data: { ports: await deps.ports(s, origin) } });
        } catch {
          /* the page's own poll reports it */
        }
      }

      // ---- the workshop, for a workshop learner ----
      for (const news of deps.news) {
        const off = news(s, Number.isInteger(after) && after > 0 ? after : 0, push);
        if (off) stops.push(off);
      }

      try {
        for await (const e of queue.events(KEEPALIVE_MS)) {
          if (e) {
            await stream.writeSSE({ event: e.event, data: JSON.stringify(e.data) });
            continue;
          }
          // The session may have ended without a word from the engine (removed, expired, its machine lost).
          if (!deps.manager.get(s.id) || deps.manager.lostMember(s.id)) {
            await stream.writeSSE({ event: 'gone', data: '{}' });
            break;
          }
          await stream.write(': keep-alive\n\n');
        }
      } catch (err) {
        if (!queue.isClosed) deps.log.error({ err, session: s.id }, 'session event stream failed');
      } finally {
        queue.close();
        for (const stop of stops) stop();
      }
    });
  });
}

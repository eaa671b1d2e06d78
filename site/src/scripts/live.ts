// The session's event stream (GET /api/sessions/:id/events, sandbox-server/sandboxes/session-feed.ts):
// ports pushed when the node's engine starts or stops a container, and a workshop's state, broadcasts
// and "instructor watching". Read with fetch because EventSource cannot send the Authorization header.
import { routePath } from './client.ts';
import type { Session } from './session.ts';

export type FeedHandlers = {
  on: (event: string, data: unknown) => void;
  /** The server no longer knows the session (401/404): the workbench decides what that means. */
  gone: () => void;
  /** The stream is up (true) or down and retrying (false): ports fall back to polling meanwhile. */
  up: (on: boolean) => void;
};

const DELAYS = [500, 1000, 2000, 5000, 10000];

export function openFeed(s: Session, after: () => number, h: FeedHandlers) {
  let ctl: AbortController | undefined;
  let closed = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let gen = 0;

  async function run() {
    const mine = ++gen;
    ctl = new AbortController();
    const retry = () => {
      if (mine === gen) again();
    };
    let res: Response;
    try {
      res = await fetch(routePath('GET /api/sessions/:id/events', { params: { id: s.id }, query: { after: after() } }), {
        headers: { authorization: `Bearer ${s.token}`, accept: 'text/event-stream' },
        signal: ctl.signal,
      });
    } catch {
      return retry();
    }
    if (res.status === 401 || res.status === 404) {
      if (!closed && mine === gen) h.gone();
      return;
    }
    if (!res.ok || !res.body) return retry();
    attempt = 0;
    h.up(true);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trimStart();
          }
          if (!data) continue;
          if (mine !== gen) return;
          if (event === 'gone') {
            if (!closed) h.gone();
            return;
          }
          try {
            h.on(event, JSON.parse(data));
          } catch {
            /* one bad event must not end the stream */
          }
        }
      }
    } catch {
      /* dropped: retried below */
    }
    retry();
  }

  function again() {
    if (closed) return;
    h.up(false);
    timer = setTimeout(() => void run(), DELAYS[Math.min(attempt++, DELAYS.length - 1)]);
  }

  void run();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      gen++;
      ctl?.abort();
    },
    /** Starts again (the node list changed, so the server must watch other engines). */
    restart() {
      if (closed) return;
      clearTimeout(timer);
      gen++;
      ctl?.abort();
      attempt = 0;
      void run();
    },
  };
}

// Upgrades (WebSocket handshakes) on the server's one port. Features register the requests they serve
// (previews, learner terminals, instructor terminals); main.ts builds the router and hands it the server's
// 'upgrade' event. The first route that matches serves the request; one that no route takes gets a JSON 404.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export type UpgradeRoute<T = unknown> = {
  /** What this route needs to serve the request (e.g. the path's ids), or null when it is not its request. */
  match: (req: IncomingMessage, url: URL) => T | null;
  handle: (req: IncomingMessage, socket: Duplex, head: Buffer, matched: T) => void | Promise<void>;
};

/** Ends an upgrade that is refused before any handshake, with the API's JSON error body. */
export function refuseUpgrade(socket: Duplex, status: number, code: string, message: string) {
  const body = JSON.stringify({ error: { code, message } });
  const reason = ({ 403: 'Forbidden', 404: 'Not Found' } as Record<number, string>)[status] ?? 'Refused';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class UpgradeRouter {
  private readonly routes: UpgradeRoute<never>[] = [];
  private readonly log: { error: (o: object, m: string) => void };

  constructor(log: { error: (o: object, m: string) => void }) {
    this.log = log;
  }

  add<T>(route: UpgradeRoute<T>) {
    this.routes.push(route as unknown as UpgradeRoute<never>);
  }

  /** Never throws nor rejects: a failure costs this one socket, never the process. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const fail = (err: unknown) => {
      this.log.error({ err }, 'upgrade failed');
      socket.destroy();
    };
    try {
      for (const route of this.routes) {
        const matched = route.match(req, url);
        if (matched === null) continue;
        return void Promise.resolve(route.handle(req, socket, head, matched)).catch(fail);
      }
      refuseUpgrade(socket, 404, 'NOT_FOUND', 'No WebSocket endpoint here.');
    } catch (err) {
      fail(err);
    }
  }
}

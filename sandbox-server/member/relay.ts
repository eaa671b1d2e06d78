// The registry mirror for nodes on this member. A node's `mirror` proxy device (engine/incus/spec.ts) connects
// to 127.0.0.1:BERTH_MIRROR_PORT on the member that holds the node, and only the Berth host runs the mirror:
// on every other member this relay listens there and pipes each connection, bytes untouched, to the Berth
// host's mirror (BERTH_MIRROR_RELAY). That mirror is read-only, so nothing a node sends through can change it.
// On the Berth host the same relay offers its mirror (published on loopback only) to the members at an address
// of the cluster network (BERTH_MIRROR_OFFER).
import { connect, createServer, type Server, type Socket } from 'node:net';

export type RelayTarget = { host: string; port: number };

export class MirrorRelay {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  readonly host: string;
  readonly port: number;
  readonly to: RelayTarget;
  private onError: (err: Error) => void;

  constructor({ host = '127.0.0.1', port, to, onError = () => {} }: { host?: string; port: number; to: RelayTarget; onError?: (err: Error) => void }) {
    this.host = host;
    this.port = port;
    this.to = to;
    this.onError = onError;
  }

  /** Listens on host:port (127.0.0.1 unless told); rejects (EADDRINUSE, say) when it cannot. */
  async start() {
    // Half-open both ways: a side that is done sending (FIN) may still receive, as through a direct connection.
    const server = createServer({ allowHalfOpen: true }, (client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.onError(err));
    this.server = server;
  }

  /** The port listened on (the one asked for; the one the system chose when that was 0). */
  get boundPort(): number | null {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : null;
  }

  private pipe(client: Socket) {
    const upstream = connect({ host: this.to.host, port: this.to.port, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.setNoDelay(true);
    }
    // A failing side ends both at once; a side that closes ends the other gracefully (what was piped is still
    // delivered), so neither half of a pair is left open with nobody on the other end.
    upstream.once('error', (err) => {
      this.onError(Object.assign(new Error(`mirror relay: ${this.to.host}:${this.to.port}: ${err.message}`), { cause: err }));
      client.destroy();
    });
    client.once('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.end());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Stops listening and ends the connections in flight. */
  async stop() {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Whether a registry answers `GET /v2/` on 127.0.0.1:port (through the relay, or the Berth host's own mirror). */
export async function mirrorAnswers(port: number, timeoutMs = 3000): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    // A registry answers /v2/ with 200 (no auth) or 401 (auth required): either is a registry.
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

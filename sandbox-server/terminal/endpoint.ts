// What every terminal WebSocket does before its own rules (terminal/upgrade.ts for learners,
// workshops/shadow.ts for instructors): the Origin is checked before the handshake, frames that arrive
// while the shell is being opened are held, the tab and size are read from the query, and the client
// process is ended when the socket closes.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { terminalQuery } from '../api.ts';
import { ApiError } from '../errors.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { SessionRow } from '../store.ts';
import { refuseUpgrade, type UpgradeRoute } from '../upgrades.ts';
import { CLOSE, error as errorFrame } from './protocol.ts';

export const SUBPROTOCOL = 'berth.v1';

export type Frame = { data: Buffer; isBinary: boolean };

/** An accepted terminal socket, its path's ids and the frames held so far. */
export type Opening = {
  ws: WebSocket;
  req: IncomingMessage;
  url: URL;
  ids: string[];
  early: Frame[];
  /** Stops holding frames: the relay takes the socket's messages from here. */
  release: () => void;
};

export type EndpointOptions = {
  /** The path; its groups are the ids handed to open(). */
  path: RegExp;
  /** What the log calls it ("terminal", "instructor terminal"). */
  name: string;
  allowedOrigins: Set<string>;
  log: { warn: (o: object, m: string) => void };
  open: (o: Opening) => Promise<void>;
};

export function terminalEndpoint(opts: EndpointOptions): UpgradeRoute<string[]> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  return {
    match: (_req, url) => opts.path.exec(url.pathname)?.slice(1) ?? null,
    handle(req, socket, head, ids) {
      const origin = req.headers.origin;
      // Browsers always send Origin; a foreign one means another site is trying to drive a shell.
      if (origin !== undefined && !opts.allowedOrigins.has(origin)) {
        opts.log.warn({ origin }, `${opts.name} upgrade from a foreign origin refused`);
        return refuseUpgrade(socket, 403, 'FORBIDDEN_ORIGIN', 'This origin may not open terminals.');
      }
      const url = new URL(req.url ?? '/', 'http://berth.invalid');
      wss.handleUpgrade(req, socket, head, (ws) => {
        // Frames that arrive while the shell is being opened are kept, not dropped, and replayed into it.
        const early: Frame[] = [];
        const keep = (data: Buffer, isBinary: boolean) => {
          if (early.length < 256) early.push({ data, isBinary });
        };
        ws.on('message', keep);
        void opts.open({ ws, req, url, ids, early, release: () => ws.off('message', keep) }).catch((err: unknown) => {
          fail(ws, 'ENGINE_UNAVAILABLE', err instanceof ApiError ? err.message : 'The terminal could not be opened.', CLOSE.ENGINE);
        });
      });
    },
  };
}

/** Sends an error frame and closes the socket with the protocol's close code. */
export function fail(ws: WebSocket, code: string, message: string, close: number) {
  ws.send(errorFrame(code, message));
  ws.close(close);
}

const terminalSize = terminalQuery.pick({ tab: true, cols: true, rows: true });

/** The tab and terminal size from the query, or null (after refusing the socket) when they are not valid. */
export function tabAndSize(ws: WebSocket, url: URL) {
  // The contract's schema (api.ts terminalQuery), so what is documented is what is accepted.
  const q = terminalSize.safeParse({
    tab: url.searchParams.get('tab') ?? undefined,
    cols: url.searchParams.get('cols') ?? undefined,
    rows: url.searchParams.get('rows') ?? undefined,
  });
  if (!q.success) {
    fail(ws, 'VALIDATION_FAILED', 'tab must be 1-16 letters or digits; cols (at most 1000) and rows (at most 500) positive integers.', CLOSE.PROTOCOL);
    return null;
  }
  return q.data;
}

/** The node the query names (node1 by default), or null (after refusing the socket) when the session has none such. */
export function nodeOf(ws: WebSocket, url: URL, manager: SandboxManager, session: SessionRow, whose: string) {
  try {
    return manager.node(session, url.searchParams.get('node') ?? undefined);
  } catch {
    fail(ws, 'NODE_NOT_FOUND', `${whose} has no node ${url.searchParams.get('node')}.`, CLOSE.PROTOCOL);
    return null;
  }
}

/** The client process named `conn` (`exec -a conn dtach -a ...`): closing an exec's stream does not end it. */
export async function endClient(provider: SandboxProvider, sandboxId: string, node: string, conn: string) {
  try {
    await provider.run(sandboxId, node, `pkill -f '^${conn} ' || true`, { timeoutMs: 5000, maxOutput: 1024 });
  } catch {
    /* the sandbox may be gone already, and its processes with it */
  }
}

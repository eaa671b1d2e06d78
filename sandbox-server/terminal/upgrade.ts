// WebSocket upgrades for terminals: the Origin is checked before the handshake, the token right after,
// and a shell is only opened for a session whose token matches.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { tokenFromProtocols } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import { randomBytes } from 'node:crypto';
import { History } from './history.ts';
import { CLOSE, error as errorFrame } from './protocol.ts';
import { relay } from './relay.ts';

/** What `dtach -a` prints on every attach (a VT100 clear), before any of the shell's output. */
const DTACH_CLEAR = Buffer.from('\x1b[H\x1b[J');

const PATH = /^\/api\/sessions\/([a-z0-9]{4,40})\/terminal$/;
export const SUBPROTOCOL = 'berth.v1';

export type UpgradeDeps = {
  manager: SandboxManager;
  provider: SandboxProvider;
  allowedOrigins: Set<string>;
  /** Terminal WebSockets open at once per session: each holds an exec stream and a process in the node. */
  maxPerSession?: number;
  metrics: { terminalBytes: (direction: 'in' | 'out', n: number) => void; terminals: (delta: number) => void };
  log: { warn: (o: object, msg: string) => void };
};

function refuse(socket: Duplex, status: number, code: string, message: string) {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function terminalUpgrades(deps: UpgradeDeps) {
  const history = new History();
  const open = new Map<string, number>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  async function endClient(id: string, node: string, conn: string) {
    try {
      await deps.provider.run(id, node, `pkill -f '^${conn} ' || true`, { timeoutMs: 5000, maxOutput: 1024 });
    } catch { /* the sandbox may be gone already, and its processes with it */ }
  }

  const onUpgrade = function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const m = PATH.exec(url.pathname);
    if (!m) return refuse(socket, 404, 'NOT_FOUND', 'No WebSocket endpoint here.');
    const origin = req.headers.origin;
    // Browsers always send Origin; a foreign one means another site is trying to drive a learner's shell.
    if (origin !== undefined && !deps.allowedOrigins.has(origin)) {
      deps.log.warn({ origin }, 'terminal upgrade from a foreign origin refused');
      return refuse(socket, 403, 'FORBIDDEN_ORIGIN', 'This origin may not open terminals.');
    }
    wss.handleUpgrade(req, socket, head, (ws) => void attach(ws, m[1], url, req));
  };
  return Object.assign(onUpgrade, { forgetSession: (id: string) => history.forgetSession(id), history });

  async function attach(ws: WebSocket, id: string, url: URL, req: IncomingMessage) {
    // Frames that arrive while the shell is being opened are kept, not dropped, and replayed into it.
    const early: { data: Buffer; isBinary: boolean }[] = [];
    const keep = (data: Buffer, isBinary: boolean) => { if (early.length < 256) early.push({ data, isBinary }); };
    ws.on('message', keep);
    const token = tokenFromProtocols(req.headers['sec-websocket-protocol']);
    let session;
    try {
      session = deps.manager.authorize(id, token);
    } catch (err) {
      const gone = err instanceof ApiError && err.code === 'SESSION_NOT_FOUND';
      ws.send(errorFrame(gone ? 'SESSION_NOT_FOUND' : 'UNAUTHORIZED', gone ? 'No such sandbox, or its token is wrong. It may have ended.' : 'The session token is missing.'));
      return ws.close(gone ? CLOSE.GONE : CLOSE.BAD_TOKEN);
    }
    const tab = url.searchParams.get('tab') ?? '1';
    const cols = Number(url.searchParams.get('cols') ?? 80);
    const rows = Number(url.searchParams.get('rows') ?? 24);
    if (!/^[a-z0-9-]{1,16}$/i.test(tab) || !Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1 || cols > 1000 || rows > 500) {
      ws.send(errorFrame('VALIDATION_FAILED', 'tab must be 1-16 letters or digits; cols and rows positive integers.'));
      return ws.close(CLOSE.PROTOCOL);
    }
    let node: string;
    try { node = deps.manager.node(session, url.searchParams.get('node') ?? undefined); } catch {
      ws.send(errorFrame('NODE_NOT_FOUND', `This session has no node ${url.searchParams.get('node')}.`));
      return ws.close(CLOSE.PROTOCOL);
    }
    const sid = session.id;
    if ((open.get(sid) ?? 0) >= (deps.maxPerSession ?? Infinity)) {
      ws.send(errorFrame('RATE_LIMITED', `This sandbox already has ${deps.maxPerSession} terminals open. Close one first.`));
      return ws.close(CLOSE.PROTOCOL);
    }
    open.set(sid, (open.get(sid) ?? 0) + 1);
    ws.on('close', () => { const n = (open.get(sid) ?? 1) - 1; if (n > 0) open.set(sid, n); else open.delete(sid); });
    try {
      // dtach keeps the shell alive across reconnects and server restarts and passes bytes through untouched.
      // Closing an exec's stream does not end its process, so each client is named and ended on close.
      const conn = `berth-term-${randomBytes(6).toString('hex')}`;
      const key = `${session.id}/${node}/${tab}`;
      const tty = await deps.provider.openTty(session.id, node,
        // The shell's holder (-n) is started apart from the client, so that ending the client spares it.
        ['bash', '-c', `s=/tmp/.berth-tab-${tab}; [ -S $s ] || dtach -n $s -E -z bash -l; exec -a ${conn} dtach -a $s -E -z -r winch`], { cols, rows });
      if (ws.readyState !== ws.OPEN) { tty.stream.destroy(); return endClient(session.id, node, conn); }
      deps.metrics.terminals(1);
      ws.on('close', () => { deps.metrics.terminals(-1); void endClient(session.id, node, conn); });
      ws.off('message', keep);
      relay({
        ws, tty, replay: history.replay(key), early,
        // dtach clears the screen on every attach, which would wipe the replayed screen on a reload.
        dropPrefix: DTACH_CLEAR,
        onInput: () => deps.manager.touch(session.id),
        onBytes: deps.metrics.terminalBytes,
        onOutput: (chunk) => history.append(key, chunk),
      });
    } catch (err) {
      ws.send(errorFrame('ENGINE_UNAVAILABLE', err instanceof ApiError ? err.message : 'The terminal could not be opened.'));
      ws.close(CLOSE.ENGINE);
    }
  }
}

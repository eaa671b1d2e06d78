// The instructor's view of a learner's terminal: the same dtach-held shell the learner's tab is attached
// to, opened with the admin credential. Read-only unless takeover=1 (read-only = INPUT frames dropped).
// Path: GET /api/workshops/:id/learners/:learner/terminal?node=&tab=&takeover=1 (WebSocket, berth.v1),
// credential as subprotocol `bearer.<admin token>` or `?ticket=` from POST /api/workshops/:id/tickets.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { tokenFromProtocols } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { History } from '../terminal/history.ts';
import { CLOSE, error as errorFrame, status } from '../terminal/protocol.ts';
import { relay } from '../terminal/relay.ts';
import { SUBPROTOCOL } from '../terminal/upgrade.ts';
import type { AdminAuth } from './admin-auth.ts';
import type { WorkshopService } from './service.ts';

const PATH = /^\/api\/workshops\/([a-z0-9]{4,40})\/learners\/([a-z0-9]{4,40})\/terminal$/;

export type Upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
/** The learners' terminal upgrades (terminal/upgrade.ts): where every other upgrade goes, and the tabs' replay. */
export type LearnerUpgrades = Upgrade & { history?: History; forgetSession?: (id: string) => void };

export type ShadowDeps = {
  service: WorkshopService;
  auth: AdminAuth;
  manager: SandboxManager;
  provider: SandboxProvider;
  allowedOrigins: Set<string>;
  log: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void };
};

function refuse(socket: Duplex, status: number, code: string, message: string) {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** What `dtach -a` writes before anything of the shell's (attach.c): cursor home, clear to the end. */
const CLEAR = Buffer.from('\x1b[H\x1b[J');

/** The stream's first `n` bytes (or what came within `ms`), leaving the stream paused. */
function firstBytes(stream: Duplex, n: number, ms: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let size = 0;
    const done = () => { clearTimeout(timer); stream.off('data', onData); stream.pause(); resolve(Buffer.concat(got)); };
    const onData = (b: Buffer) => { got.push(b); size += b.length; if (size >= n) done(); };
    const timer = setTimeout(done, ms);
    stream.on('data', onData);
  });
}

export function instructorTerminals(deps: ShadowDeps) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  /** Handles the instructor path and hands every other upgrade to the learners' handler. */
  return function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, learners: LearnerUpgrades) {
    deps.service.forgetTerminals = (id) => learners.forgetSession?.(id);
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const m = PATH.exec(url.pathname);
    if (!m) return learners(req, socket, head);
    const origin = req.headers.origin;
    if (origin !== undefined && !deps.allowedOrigins.has(origin)) {
      deps.log.warn({ origin }, 'instructor terminal upgrade from a foreign origin refused');
      return refuse(socket, 403, 'FORBIDDEN_ORIGIN', 'This origin may not open terminals.');
    }
    wss.handleUpgrade(req, socket, head, (ws) => void attach(ws, m[1], m[2], url, req, learners.history));
  };

  async function attach(ws: WebSocket, workshopId: string, learnerId: string, url: URL, req: IncomingMessage, history: History | undefined) {
    const early: { data: Buffer; isBinary: boolean }[] = [];
    const keep = (data: Buffer, isBinary: boolean) => { if (early.length < 256) early.push({ data, isBinary }); };
    ws.on('message', keep);
    const admin = deps.auth.check(tokenFromProtocols(req.headers['sec-websocket-protocol'])) || deps.auth.useTicket(url.searchParams.get('ticket'), workshopId);
    if (!admin) {
      ws.send(errorFrame('UNAUTHORIZED', 'An instructor token (or a ticket) is needed to open a learner\'s terminal.'));
      return ws.close(CLOSE.BAD_TOKEN);
    }
    let session;
    let name = '';
    try {
      const w = deps.service.get(workshopId);
      const l = deps.service.learnerOf(w, learnerId);
      name = l.name;
      session = l.sessionId ? deps.manager.opts.store.getSession(l.sessionId) : undefined;
      if (!session || l.sandbox === 'gone' || l.sandbox === 'removed') throw new ApiError(404, 'NO_SANDBOX', `${l.name} has no sandbox.`);
    } catch (err) {
      ws.send(errorFrame(err instanceof ApiError ? err.code : 'NOT_FOUND', err instanceof ApiError ? err.message : 'Not found.'));
      return ws.close(CLOSE.GONE);
    }
    const tab = url.searchParams.get('tab') ?? '1';
    const takeover = url.searchParams.get('takeover') === '1';
    let cols = Number(url.searchParams.get('cols') ?? 80);
    let rows = Number(url.searchParams.get('rows') ?? 24);
    if (!/^[a-z0-9-]{1,16}$/i.test(tab) || !Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1 || cols > 1000 || rows > 500) {
      ws.send(errorFrame('VALIDATION_FAILED', 'tab must be 1-16 letters or digits; cols and rows positive integers.'));
      return ws.close(CLOSE.PROTOCOL);
    }
    let node: string;
    try { node = deps.manager.node(session, url.searchParams.get('node') ?? undefined); } catch {
      ws.send(errorFrame('NODE_NOT_FOUND', `This learner has no node ${url.searchParams.get('node')}.`));
      return ws.close(CLOSE.PROTOCOL);
    }
    const sock = `/tmp/.berth-tab-${tab}`;
    const conn = `berth-shadow-${randomBytes(6).toString('hex')}`;
    try {
      // The watcher's terminal takes the learner's size: a different one would reflow the learner's screen.
      const size = await learnerSize(session.id, node, sock);
      // Clamped: a learner's `stty rows 65000 cols 65000` must not make the instructor's browser draw that.
      if (size) ({ cols, rows } = { cols: Math.min(Math.max(size.cols, 1), 1000), rows: Math.min(Math.max(size.rows, 1), 500) });
      // Read-only attaches with no redraw (-r none sends no size); the watcher's resizes are ignored below.
      const script = takeover
        ? `[ -S ${sock} ] || dtach -n ${sock} -E -z bash -l; exec -a ${conn} dtach -a ${sock} -E -z -r winch`
        : `exec -a ${conn} bash -c 'if [ ! -S ${sock} ]; then printf "\\r\\n(waiting for the learner to open this terminal)\\r\\n"; fi; while [ ! -S ${sock} ]; do sleep 1; done; exec -a ${conn} dtach -a ${sock} -E -z -r none'`;
      const tty = await deps.provider.openTty(session.id, node, ['bash', '-c', script], { cols, rows });
      const end = () => void deps.provider.run(session.id, node, `pkill -f '^${conn} ' || true`, { timeoutMs: 5000, maxOutput: 1024 }).catch(() => {});
      if (ws.readyState !== ws.OPEN) { tty.stream.destroy(); return end(); }
      ws.on('close', () => { end(); deps.log.info({ workshop: workshopId, learner: learnerId, takeover }, 'instructor terminal closed'); });
      ws.off('message', keep);
      deps.log.info({ workshop: workshopId, learner: learnerId, node, tab, takeover }, 'instructor terminal opened');
      ws.send(status({ state: 'watching', learner: name, takeover, cols, rows }));
      // dtach clears the screen as it attaches; the replay must come after that, not be wiped by it.
      const first = await firstBytes(tty.stream, CLEAR.length, 2000);
      if (ws.readyState !== ws.OPEN) { tty.stream.destroy(); return end(); }
      const rest = first.subarray(0, CLEAR.length).equals(CLEAR) ? first.subarray(CLEAR.length) : first;
      if (rest.length) tty.stream.unshift(rest);
      relay({
        ws, tty: { stream: tty.stream, resize: async () => {} }, early, readOnly: !takeover,
        replay: history?.replay(`${session.id}/${node}/${tab}`) ?? Buffer.alloc(0),
        onInput: () => deps.manager.touch(session.id),
        onBytes: () => {},
        // The learner's own connection records the tab's output for replay; recording it here too would double it.
        onOutput: () => {},
      });
      tty.stream.resume();
    } catch (err) {
      ws.send(errorFrame('ENGINE_UNAVAILABLE', err instanceof ApiError ? err.message : 'The terminal could not be opened.'));
      ws.close(CLOSE.ENGINE);
    }
  }

  /** Rows and columns of the learner's shell for this tab, read from its pty; null if it has none yet. */
  async function learnerSize(sandboxId: string, node: string, sock: string) {
    const r = await deps.provider.run(sandboxId, node,
      `p=$(pgrep -o -f '^dtach -n ${sock} ') && c=$(pgrep -o -P "$p") && stty -F "/proc/$c/fd/0" size`, { timeoutMs: 5000, maxOutput: 1024 });
    const m = /^(\d+) (\d+)\s*$/.exec(r.stdout);
    return r.exitCode === 0 && m ? { rows: Number(m[1]), cols: Number(m[2]) } : null;
  }
}

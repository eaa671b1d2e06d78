// Learners' terminals: GET /api/sessions/:id/terminal?node=&tab=&cols=&rows= (WebSocket, berth.v1), the session
// token as subprotocol `bearer.<token>`. The Origin is checked before the handshake (endpoint.ts), the token
// right after, and a shell is only opened for a session whose token matches.
import { tokenFromProtocols } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { SessionRow } from '../store.ts';
import type { Attacher } from './attach.ts';
import { fail, nodeOf, tabAndSize, terminalEndpoint, type Opening } from './endpoint.ts';
import type { History } from './history.ts';
import { CLOSE } from './protocol.ts';
import { relay } from './relay.ts';

const PATH = /^\/api\/sessions\/([a-z0-9]{4,40})\/terminal$/;

export type LearnerTerminalDeps = {
  manager: SandboxManager;
  /** Reaches the tab's shell (attach.ts): directly on its dtach socket, or through exec. */
  attacher: Attacher;
  /** Each tab's recent output, recorded here and replayed on reconnect (and to a watching instructor). */
  history: History;
  allowedOrigins: Set<string>;
  /** Terminal WebSockets open at once per session: each holds a socket into the node (and, attached through exec, a process there). */
  maxPerSession?: number;
  metrics: { terminalBytes: (direction: 'in' | 'out', n: number) => void; terminals: (delta: number) => void };
  log: { warn: (o: object, msg: string) => void };
};

/** The upgrade route of learners' terminals (registered with main.ts's UpgradeRouter). */
export function learnerTerminals(deps: LearnerTerminalDeps) {
  const open = new Map<string, number>();
  return terminalEndpoint({ path: PATH, name: 'terminal', allowedOrigins: deps.allowedOrigins, log: deps.log, open: attach });

  async function attach({ ws, req, url, ids: [id], early, release }: Opening) {
    const token = tokenFromProtocols(req.headers['sec-websocket-protocol']);
    let session: SessionRow;
    try {
      session = deps.manager.authorize(id, token);
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'MACHINE_LOST' || err.code === 'MACHINE_MAINTENANCE')) return fail(ws, err.code, err.message, CLOSE.LOST);
      const gone = err instanceof ApiError && err.code === 'SESSION_NOT_FOUND';
      return fail(
        ws,
        gone ? 'SESSION_NOT_FOUND' : 'UNAUTHORIZED',
        gone ? 'No such sandbox, or its token is wrong. It may have ended.' : 'The session token is missing.',
        gone ? CLOSE.GONE : CLOSE.BAD_TOKEN,
      );
    }
    const size = tabAndSize(ws, url);
    if (!size) return;
    const { tab, cols, rows } = size;
    const node = nodeOf(ws, url, deps.manager, session, 'This session');
    if (!node) return;
    const sid = session.id;
    if ((open.get(sid) ?? 0) >= (deps.maxPerSession ?? Infinity)) {
      return fail(ws, 'RATE_LIMITED', `This sandbox already has ${deps.maxPerSession} terminals open. Close one first.`, CLOSE.PROTOCOL);
    }
    open.set(sid, (open.get(sid) ?? 0) + 1);
    ws.on('close', () => {
      const n = (open.get(sid) ?? 1) - 1;
      if (n > 0) open.set(sid, n);
      else open.delete(sid);
    });
    // dtach keeps the shell alive across reconnects and server restarts and passes bytes through untouched.
    const key = `${sid}/${node}/${tab}`;
    const shell = await deps.attacher.open({ sandboxId: sid, node, tab, cols, rows, role: 'learner' });
    if (!shell) return;
    if (ws.readyState !== ws.OPEN) return shell.end();
    deps.metrics.terminals(1);
    // An open terminal is a session in use: a machine being drained keeps it until the deadline.
    ws.on('close', deps.manager.terminalOpened(sid));
    ws.on('close', () => {
      deps.metrics.terminals(-1);
      shell.end();
    });
    release();
    relay({
      ws,
      tty: shell,
      replay: deps.history.replay(key),
      early,
      // `dtach -a` clears the screen on every attach, which would wipe the replayed screen on a reload.
      dropPrefix: shell.dropPrefix,
      onInput: () => deps.manager.touch(sid),
      onBytes: deps.metrics.terminalBytes,
      onOutput: (chunk) => deps.history.append(key, chunk),
    });
  }
}

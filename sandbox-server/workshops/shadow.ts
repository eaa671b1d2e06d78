// The instructor's view of a learner's terminal: the same dtach-held shell the learner's tab is attached
// to, opened with the admin credential. Read-only unless takeover=1 (read-only = INPUT frames dropped).
// Path: GET /api/workshops/:id/learners/:learner/terminal?node=&tab=&takeover=1 (WebSocket, berth.v1),
// credential as subprotocol `bearer.<admin token>` or `?ticket=` from POST /api/workshops/:id/tickets.
// `as=<name>` is the instructor's name as the learner sees it in the "watching" banner (service.watch).
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { tokenFromProtocols } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { SessionRow } from '../store.ts';
import { type Attached, type Attacher, socketPath } from '../terminal/attach.ts';
import { fail, nodeOf, tabAndSize, terminalEndpoint, type Opening } from '../terminal/endpoint.ts';
import type { History } from '../terminal/history.ts';
import { CLOSE, output, status } from '../terminal/protocol.ts';
import { relay } from '../terminal/relay.ts';
import type { AdminAuth } from './admin-auth.ts';
import type { WorkshopService } from './service.ts';

const PATH = /^\/api\/workshops\/([a-z0-9]{4,40})\/learners\/([a-z0-9]{4,40})\/terminal$/;

export type ShadowDeps = {
  service: WorkshopService;
  auth: AdminAuth;
  manager: SandboxManager;
  provider: SandboxProvider;
  /** Reaches a tab's shell the way the learner's own terminal does (terminal/attach.ts). */
  attacher: Attacher;
  /** The learners' terminal output (terminal/upgrade.ts records it): replayed to the watcher first. */
  history: History;
  allowedOrigins: Set<string>;
  log: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void };
};

/** The stream's first `n` bytes (or what came within `ms`), leaving the stream paused. */
function firstBytes(stream: Duplex, n: number, ms: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.pause();
      resolve(Buffer.concat(got));
    };
    const onData = (b: Buffer) => {
      got.push(b);
      size += b.length;
      if (size >= n) done();
    };
    const timer = setTimeout(done, ms);
    stream.on('data', onData);
  });
}

/** The name the learner's banner shows: what the instructor typed, cleaned, or a neutral default. */
export function instructorName(raw: string | null): string {
  const name = (raw ?? '')
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Cf}<>]/gu, '')
    .trim()
    .replace(/\s+/g, ' ')
    .slice(0, 40);
  return name || 'Your instructor';
}

/** The upgrade route of instructor terminals (registered with main.ts's UpgradeRouter). */
export function instructorTerminals(deps: ShadowDeps) {
  return terminalEndpoint({ path: PATH, name: 'instructor terminal', allowedOrigins: deps.allowedOrigins, log: deps.log, open: attach });

  async function attach({ ws, req, url, ids: [workshopId, learnerId], early, release }: Opening) {
    const admin = deps.auth.check(tokenFromProtocols(req.headers['sec-websocket-protocol'])) || deps.auth.useTicket(url.searchParams.get('ticket'), workshopId);
    if (!admin) return fail(ws, 'UNAUTHORIZED', "An instructor token (or a ticket) is needed to open a learner's terminal.", CLOSE.BAD_TOKEN);
    let session: SessionRow | undefined;
    let name = '';
    try {
      const w = deps.service.get(workshopId);
      const l = deps.service.learnerOf(w, learnerId);
      name = l.name;
      session = l.sessionId ? deps.manager.get(l.sessionId) : undefined;
      if (!session || l.sandbox === 'gone' || l.sandbox === 'removed' || l.sandbox === 'lost')
        throw new ApiError(404, 'NO_SANDBOX', `${l.name} has no sandbox.`);
    } catch (err) {
      return fail(ws, err instanceof ApiError ? err.code : 'NOT_FOUND', err instanceof ApiError ? err.message : 'Not found.', CLOSE.GONE);
    }
    const size = tabAndSize(ws, url);
    if (!size) return;
    const { tab, takeover } = { tab: size.tab, takeover: url.searchParams.get('takeover') === '1' };
    let { cols, rows } = size;
    const node = nodeOf(ws, url, deps.manager, session, 'This learner');
    if (!node) return;
    const sock = socketPath(tab);
    const sid = session.id;
    // The watcher's terminal takes the learner's size: a different one would reflow the learner's screen.
    const learner = await learnerSize(sid, node, sock);
    // Clamped: a learner's `stty rows 65000 cols 65000` must not make the instructor's browser draw that.
    if (learner) ({ cols, rows } = { cols: Math.min(Math.max(learner.cols, 1), 1000), rows: Math.min(Math.max(learner.rows, 1), 500) });
    const alive = () => ws.readyState === ws.OPEN;
    const conn = `shadow-${randomBytes(6).toString('hex')}`;
    let shell: Attached | null = null;
    // The learner's page shows a banner while this is open: nobody is watched without knowing it.
    const w = deps.service.get(workshopId);
    deps.service.watch(w, learnerId, conn, { name: instructorName(url.searchParams.get('as')), takeover });
    ws.on('close', () => {
      shell?.end();
      deps.service.watch(w, learnerId, conn, null);
      deps.log.info({ workshop: workshopId, learner: learnerId, takeover }, 'instructor terminal closed');
    });
    ws.send(status({ state: 'watching', learner: name, takeover, cols, rows }));
    // The same path as the learner's own tab (direct on the dtach socket, or exec): a watcher attaches with
    // no redraw and no size; take-over redraws at the learner's size.
    shell = await deps.attacher.open(
      { sandboxId: sid, node, tab, cols, rows, role: takeover ? 'takeover' : 'watch' },
      {
        alive,
        onWaiting: () => ws.send(output(Buffer.from('\r\n(waiting for the learner to open this terminal)\r\n'))),
      },
    );
    if (!shell) return;
    if (!alive()) return shell.end();
    deps.log.info({ workshop: workshopId, learner: learnerId, node, tab, takeover, attach: shell.how }, 'instructor terminal opened');
    if (shell.dropPrefix) {
      // `dtach -a` clears the screen as it attaches; the replay must come after that, not be wiped by it.
      const clear = shell.dropPrefix;
      const first = await firstBytes(shell.stream, clear.length, 2000);
      if (!alive()) return shell.end();
      const rest = first.subarray(0, clear.length).equals(clear) ? first.subarray(clear.length) : first;
      if (rest.length) shell.stream.unshift(rest);
    }
    // Keystrokes sent while the shell was being reached were held in `early`; only now does the relay take
    // over (releasing them earlier lost what an instructor typed right after "take over").
    release();
    relay({
      ws,
      tty: { stream: shell.stream, write: shell.write, resize: async () => {} },
      early,
      readOnly: !takeover,
      replay: deps.history.replay(`${sid}/${node}/${tab}`),
      onInput: () => deps.manager.touch(sid),
      onBytes: () => {},
      // The learner's own connection records the tab's output for replay; recording it here too would double it.
      onOutput: () => {},
    });
    shell.stream.resume();
  }

  /** Rows and columns of the learner's shell for this tab, read from its pty; null if it has none yet. */
  async function learnerSize(sandboxId: string, node: string, sock: string) {
    const r = await deps.provider.run(sandboxId, node, `p=$(pgrep -o -f '^dtach -n ${sock} ') && c=$(pgrep -o -P "$p") && stty -F "/proc/$c/fd/0" size`, {
      timeoutMs: 5000,
      maxOutput: 1024,
    });
    const m = /^(\d+) (\d+)\s*$/.exec(r.stdout);
    return r.exitCode === 0 && m ? { rows: Number(m[1]), cols: Number(m[2]) } : null;
  }
}

// The one terminal client of the tests and benchmarks: Berth's binary protocol (sandbox-server/terminal/protocol.ts)
// over the `ws` package, which, unlike the global WebSocket, can send an Origin header and reports the HTTP
// status of a refused upgrade. Learner terminals (openTerminal) and instructor terminals (openShadow) share it.
import WebSocket from 'ws';
import { encodeAck, encodeInput, encodeResize, OP } from '../../sandbox-server/terminal/protocol.ts';

export type TermOptions = {
  /** Sent as the Origin header (the server refuses origins other than the site's). */
  origin?: string;
  /** Acknowledge OUTPUT bytes as they arrive (default); off, the client behaves like a browser that fell behind. */
  autoAck?: boolean;
  /** How acknowledgements go out: 'frame' (default) one ACK per OUTPUT frame, sent before the bytes are handed on;
   * 'page' as the site's page sends them (site/src/scripts/terminal.ts): after the bytes were handed on, once
   * 32 KiB are owed or 25 ms after the first unacknowledged byte. Benchmarks use 'page', so that keystroke echo
   * is not charged with an ACK the real client never sends between two keys. */
  ack?: 'frame' | 'page';
  /** Keep the printed text for waitFor (default). Off for benchmarks, where stripping escapes on every frame
   * would measure the client instead of the relay. */
  keepText?: boolean;
};

export type TermClient = {
  ws: WebSocket;
  /** Resolves when the upgrade succeeded; rejects with the HTTP status (e.g. "HTTP 403") when it was refused. */
  opened: Promise<void>;
  /** What the terminal printed (the last 200 kB), escapes included. */
  output: () => string;
  /** A position in the output: waitFor(re, { from }) then looks only at what came after it. */
  mark: () => number;
  bytes: () => number;
  /** Payloads of STATUS and ERROR frames, in order. */
  statuses: string[];
  send: (s: string) => void;
  resize: (cols: number, rows: number) => void;
  onData: (cb: (data: Buffer) => void) => () => void;
  /** Resolves with the STATUS or ERROR payload that matches `re` (e.g. /"state":"(ready|reconnected)"/: the shell is attached). */
  waitForStatus: (re: RegExp, timeoutMs?: number) => Promise<string>;
  /** Resolves with the output once `re` matches it as a person would read it (escapes removed). */
  waitFor: (re: RegExp, opts?: number | { timeoutMs?: number; from?: number }) => Promise<string>;
  closed: Promise<{ code: number }>;
  close: () => void;
  /** Stops or restarts acknowledging output, as a slow browser would. */
  setAutoAck: (on: boolean) => void;
};

const KEEP = 200_000;
/** The page acknowledges once this many bytes are owed (ACK_EVERY in site/src/scripts/terminal.ts). */
const PAGE_ACK_EVERY = 32 * 1024;
/** Bytes re-read before new output when waiting for a pattern (longer than any line a test waits for). */
const OVERLAP = 8192;

/** Terminal text without escape sequences, for matching what a person would read. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what an escape sequence starts with.
export const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]/g, '');

/** Opens a terminal WebSocket at `url` with the session (or admin) token as a subprotocol. */
export function connectTerminal(url: string, token: string, opts: TermOptions = {}): TermClient {
  const ws = new WebSocket(url, ['berth.v1', `bearer.${token}`], opts.origin ? { headers: { Origin: opts.origin } } : {});
  const keepText = opts.keepText !== false;
  let text = '';
  let dropped = 0;
  let total = 0;
  let autoAck = opts.autoAck !== false;
  const pageAck = opts.ack === 'page';
  let owed = 0;
  let ackTimer: NodeJS.Timeout | undefined;
  const flushAck = () => {
    clearTimeout(ackTimer);
    ackTimer = undefined;
    if (owed && ws.readyState === WebSocket.OPEN) {
      ws.send(encodeAck(owed));
      owed = 0;
    }
  };
  const statuses: string[] = [];
  const subs = new Set<(b: Buffer) => void>();
  const waiters = new Set<() => void>();
  const since = (from: number) => text.slice(Math.max(0, from - dropped));
  // Waiters are checked once per turn of the event loop, not once per frame: under bulk output a check per
  // frame (escapes stripped from up to 200 kB each time) would cost more CPU than the relay being tested.
  let scheduled = false;
  const notify = () => {
    if (scheduled || !waiters.size) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      for (const w of [...waiters]) w();
    });
  };

  ws.on('message', (b: Buffer) => {
    if (b[0] === OP.STATUS || b[0] === OP.ERROR) {
      statuses.push(b.subarray(1).toString('utf8'));
      notify();
      return;
    }
    if (b[0] !== OP.OUTPUT) return;
    const data = b.subarray(1);
    total += data.length;
    if (autoAck && !pageAck) ws.send(encodeAck(data.length));
    else owed += data.length;
    for (const cb of subs) cb(data);
    if (autoAck && pageAck) {
      if (owed >= PAGE_ACK_EVERY) flushAck();
      else ackTimer ??= setTimeout(flushAck, 25);
    }
    if (!keepText) return;
    text += data.toString('utf8');
    if (text.length > KEEP) {
      dropped += text.length - KEEP;
      text = text.slice(-KEEP);
    }
    notify();
  });
  const closed = new Promise<{ code: number }>((ok) =>
    ws.on('close', (code) => {
      clearTimeout(ackTimer);
      ok({ code });
    }),
  );
  const opened = new Promise<void>((ok, fail) => {
    ws.on('open', () => ok());
    ws.on('error', (err) => fail(err));
    ws.on('unexpected-response', (_req, res) => {
      fail(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
  });
  // A refused upgrade is the caller's to assert on (opened); it must not also surface as an unhandled rejection.
  opened.catch(() => {});

  /** Resolves with found() once it returns a string, re-checked on every frame. */
  const until = (found: () => string | undefined, timeoutMs: number, what: () => string) =>
    new Promise<string>((res, rej) => {
      const check = () => {
        const v = found();
        if (v === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        res(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        rej(new Error(what()));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    ws,
    opened,
    statuses,
    output: () => text,
    mark: () => dropped + text.length,
    bytes: () => total,
    send: (s) => ws.send(encodeInput(s)),
    resize: (c, r) => ws.send(encodeResize(c, r)),
    onData: (cb) => {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    waitFor: (re, o = {}) => {
      const { timeoutMs = 20_000, from = 0 } = typeof o === 'number' ? { timeoutMs: o } : o;
      if (!keepText) return Promise.reject(new Error('waitFor needs keepText'));
      // Each check reads only what arrived since the last one, plus an overlap for a match split across frames:
      // rescanning 200 kB on every check made a 200 MB test spend more CPU in the client than in the relay.
      let scanned = from;
      return until(
        () => {
          const end = dropped + text.length;
          const hit = re.test(plain(since(Math.max(from, scanned - OVERLAP))));
          scanned = end;
          return hit ? text : undefined;
        },
        timeoutMs,
        () => `timed out waiting for ${re}; got: ${JSON.stringify(plain(since(from)).slice(-500))}`,
      );
    },
    waitForStatus: (re, timeoutMs = 20_000) =>
      until(
        () => statuses.find((x) => re.test(x)),
        timeoutMs,
        () => `timed out waiting for status ${re}; got: ${JSON.stringify(statuses)}`,
      ),
    closed,
    close: () => ws.close(),
    setAutoAck: (on) => {
      autoAck = on;
      if (on) flushAck();
    },
  };
}

const query = (o: { node?: string; tab?: string; cols?: number; rows?: number }, extra: Record<string, string> = {}) =>
  new URLSearchParams({ node: o.node ?? 'node1', tab: o.tab ?? '1', cols: String(o.cols ?? 100), rows: String(o.rows ?? 30), ...extra });

/** A learner's terminal on one node and tab; resolves once the upgrade succeeded. */
export async function openTerminal(
  baseUrl: string,
  id: string,
  token: string,
  opts: TermOptions & { node?: string; tab?: string; cols?: number; rows?: number } = {},
): Promise<TermClient> {
  const term = connectTerminal(`${baseUrl.replace(/^http/, 'ws')}/api/sessions/${id}/terminal?${query(opts)}`, token, opts);
  await term.opened;
  return term;
}

/** An instructor's view of a learner's tab (read-only unless takeover); not awaited, so a refusal can be asserted. */
export function openShadow(
  baseUrl: string,
  workshopId: string,
  learnerId: string,
  token: string,
  opts: TermOptions & { node?: string; tab?: string; takeover?: boolean } = {},
): TermClient {
  const q = query(opts, opts.takeover ? { takeover: '1' } : {});
  return connectTerminal(`${baseUrl.replace(/^http/, 'ws')}/api/workshops/${workshopId}/learners/${learnerId}/terminal?${q}`, token, opts);
}

/** Types a command and returns the first capture of `re` in what the terminal printed after it. */
export async function lineAfter(term: TermClient, cmd: string, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const from = term.mark();
  term.send(`${cmd}\r`);
  await term.waitFor(re, { from, timeoutMs });
  return re.exec(plain(term.output().slice(-(term.mark() - from))))![1];
}

/**
 * The size the shell reports (`rows cols`), asked until it is the one given (at most 20 times): a resize, or the
 * size a terminal was opened with, can reach the TTY after the next command.
 */
export async function sizeSeen(term: TermClient, cols: number, rows: number): Promise<string> {
  let size = '';
  for (let i = 0; i < 20 && size !== `${rows} ${cols}`; i++) size = await lineAfter(term, 'stty size', /\n\r?(\d+ \d+)\r/);
  return size;
}

// A terminal client speaking Berth's binary protocol, for tests and benchmarks.
import { encodeAck, encodeInput, encodeResize, OP } from '../../sandbox-server/terminal/protocol.ts';

export type TermClient = {
  ws: WebSocket;
  output: () => string;
  bytes: () => number;
  send: (s: string) => void;
  resize: (cols: number, rows: number) => void;
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>;
  closed: Promise<{ code: number }>;
  close: () => void;
  /** Stops or restarts acknowledging output, as a slow browser would. */
  setAutoAck: (on: boolean) => void;
};

/** Terminal text without escape sequences, for matching what a person would read. */
export const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]/g, '');

export function openTerminal(baseUrl: string, id: string, token: string, opts: { node?: string; tab?: string; origin?: string; autoAck?: boolean } = {}): Promise<TermClient> {
  const q = new URLSearchParams({ node: opts.node ?? 'node1', tab: opts.tab ?? '1', cols: '100', rows: '30' });
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/sessions/${id}/terminal?${q}`, ['berth.v1', `bearer.${token}`]);
  ws.binaryType = 'arraybuffer';
  let text = '';
  let total = 0;
  let autoAck = opts.autoAck !== false;
  let owed = 0;
  const waiters: { re: RegExp; ok: (s: string) => void }[] = [];
  ws.addEventListener('message', (ev) => {
    const b = Buffer.from(ev.data as ArrayBuffer);
    if (b[0] === OP.OUTPUT) {
      total += b.length - 1;
      text = (text + b.subarray(1).toString('utf8')).slice(-200_000);
      if (autoAck) ws.send(encodeAck(b.length - 1)); else owed += b.length - 1;
      const shown = plain(text);
      for (const w of [...waiters]) if (w.re.test(shown)) { waiters.splice(waiters.indexOf(w), 1); w.ok(text); }
    }
  });
  const closed = new Promise<{ code: number }>((ok) => ws.addEventListener('close', (ev) => ok({ code: ev.code })));
  return new Promise((ok, fail) => {
    ws.addEventListener('open', () => ok({
      ws, output: () => text, bytes: () => total,
      send: (s) => ws.send(encodeInput(s)),
      resize: (c, r) => ws.send(encodeResize(c, r)),
      waitFor: (re, timeoutMs = 20_000) => new Promise((res, rej) => {
        if (re.test(plain(text))) return res(text);
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${re}; got: ${JSON.stringify(plain(text).slice(-500))}`)), timeoutMs);
        waiters.push({ re, ok: (s) => { clearTimeout(t); res(s); } });
      }),
      closed, close: () => ws.close(),
      setAutoAck: (on) => { autoAck = on; if (on && owed) { ws.send(encodeAck(owed)); owed = 0; } },
    }));
    ws.addEventListener('error', () => fail(new Error('websocket failed to open')));
  });
}

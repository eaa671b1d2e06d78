// One terminal tab: an xterm.js view attached to the session's WebSocket, speaking Berth's binary
// protocol (README "Terminal protocol"). Acknowledges output once xterm has rendered it, and
// reconnects with backoff unless the server said the token is bad (4401) or the session is gone (4404).
import { CLOSE, OP } from '../../../sandbox-server/terminal/protocol.ts';
import { routePath } from './client.ts';
import type { Session } from './session.ts';
import type { Theme } from './theme.ts';

type Lib = typeof import('./xterm-lib.ts');
type Term = InstanceType<Lib['Terminal']>;

export type TermState =
  | { kind: 'connecting' }
  | { kind: 'ready'; reattached: boolean }
  | { kind: 'reconnecting'; attempt: number; inMs: number; code: number }
  | { kind: 'exited' }
  | { kind: 'gone'; lost?: string; maintenance?: boolean }
  | { kind: 'unauthorized' }
  | { kind: 'failed'; message: string };

const DELAYS = [300, 1000, 2000, 4000, 8000, 15000];
const ACK_EVERY = 32 * 1024;

export const TERM_THEMES: Record<Theme, Record<string, string>> = {
  dark: { background: '#0d0f13', foreground: '#e5e9f0', cursor: '#7cc4ff', selectionBackground: '#35506b' },
  // xterm's default palette is made for black; on a light background every colour needs 4.5:1 contrast.
  light: {
    background: '#fbfcfd',
    foreground: '#1b2330',
    cursor: '#0b5f95',
    cursorAccent: '#fbfcfd',
    selectionBackground: '#c7dcef',
    black: '#1b2330',
    red: '#b42318',
    green: '#17703a',
    yellow: '#8a6100',
    blue: '#0b5f95',
    magenta: '#8e3c97',
    cyan: '#0e6f80',
    white: '#5d6673',
    brightBlack: '#566172',
    brightRed: '#a3261b',
    brightGreen: '#1a6b37',
    brightYellow: '#7a5200',
    brightBlue: '#1d5d9b',
    brightMagenta: '#7d2f86',
    brightCyan: '#0b5e6c',
    brightWhite: '#3f4652',
  },
};

export class TerminalTab {
  readonly node: string;
  readonly tab: string;
  readonly term: Term;
  state: TermState = { kind: 'connecting' };
  private readonly fit: InstanceType<Lib['FitAddon']>;
  private readonly host: HTMLElement;
  private readonly session: () => Session | null;
  private readonly onState: (t: TerminalTab, s: TermState) => void;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private owed = 0;
  /** The message of the last error frame (a lost machine's close carries none of its own), and its code. */
  private lastError: string | undefined;
  private lastErrorCode: string | undefined;
  /** Counts connections: output rendered for an earlier one is not acknowledged to a later one. */
  private generation = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private pending: string[] = [];
  private disposed = false;
  private readonly resizeObserver: ResizeObserver;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(
    lib: Lib,
    opts: {
      host: HTMLElement;
      node: string;
      tab: string;
      theme: Theme;
      session: () => Session | null;
      onState: (t: TerminalTab, s: TermState) => void;
      screenReader?: boolean;
      onInput?: () => void;
    },
  ) {
    this.node = opts.node;
    this.tab = opts.tab;
    this.host = opts.host;
    this.session = opts.session;
    this.onState = opts.onState;
    this.term = new lib.Terminal({
      cursorBlink: true,
      fontSize: 14,
      scrollback: 5000,
      allowProposedApi: false,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
      theme: TERM_THEMES[opts.theme],
    });
    this.fit = new lib.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new lib.WebLinksAddon());
    this.term.open(this.host);
    const ta = this.term.textarea;
    if (ta) {
      ta.setAttribute('aria-label', `Terminal on ${this.node}${this.tab === '1' ? '' : `, tab ${this.tab}`}`);
      ta.setAttribute('aria-describedby', 'term-help');
    }
    this.term.attachCustomKeyEventHandler((e) => this.key(e));
    this.term.options.screenReaderMode = opts.screenReader ?? false;
    this.term.onData((d) => {
      opts.onInput?.();
      this.sendBytes(this.encoder.encode(d));
    });
    this.term.onBinary((d) => this.sendBytes(Uint8Array.from(d, (c) => c.charCodeAt(0))));
    this.term.onResize(({ cols, rows }) => this.sendFrame(OP.RESIZE, this.encoder.encode(JSON.stringify({ cols, rows }))));
    let frame = 0;
    this.resizeObserver = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => this.refit());
    });
    this.resizeObserver.observe(this.host);
    this.refit();
    this.connect();
  }

  /** Fits the terminal to its box; a hidden tab has no box and keeps its size until shown. */
  refit() {
    if (this.disposed || !this.host.offsetParent || this.host.clientWidth < 20) return;
    try {
      this.fit.fit();
    } catch {
      /* not measurable yet */
    }
  }

  setTheme(theme: Theme) {
    this.term.options.theme = TERM_THEMES[theme];
  }

  setScreenReader(on: boolean) {
    this.term.options.screenReaderMode = on;
  }

  /**
   * VS Code's terminal keys: Ctrl/Cmd+C copies when text is selected and interrupts otherwise;
   * Ctrl/Cmd+V and Ctrl+Shift+V paste (the browser's paste event, which xterm sends as bracketed
   * paste); Ctrl+Shift+C copies. F6 leaves the terminal (Tab belongs to the shell's completion).
   * Returning false leaves the key to the browser instead of sending it to the shell.
   */
  private key(e: KeyboardEvent): boolean {
    if (e.type !== 'keydown') return !(e.type === 'keyup' && e.key === 'F6');
    if (e.key === 'F6') {
      document.getElementById('instructions')?.focus();
      return false;
    }
    const mod = e.ctrlKey || e.metaKey;
    if (!mod || e.altKey) return true;
    const k = e.key.toLowerCase();
    if (k === 'c' && (e.shiftKey || this.term.hasSelection())) {
      const text = this.term.getSelection();
      if (text)
        void navigator.clipboard?.writeText(text).catch(() => {
          /* no clipboard access: the context menu still works */
        });
      // Copied text stays selected only when asked for explicitly, as in VS Code.
      if (!e.shiftKey) this.term.clearSelection();
      e.preventDefault();
      return false;
    }
    // Not handled here: the browser's paste event reaches xterm's textarea and arrives as one bracketed paste.
    if (k === 'v') return false;
    return true;
  }

  focus() {
    this.term.focus();
  }

  /** Types text into the shell; held until the connection is ready. */
  type(text: string) {
    if (this.state.kind === 'ready' && this.ws?.readyState === WebSocket.OPEN) this.sendBytes(this.encoder.encode(text));
    else this.pending.push(text);
  }

  connect() {
    const s = this.session();
    if (!s || this.disposed) return;
    clearTimeout(this.retryTimer);
    this.setState({ kind: 'connecting' });
    const where = routePath('GET /api/sessions/:id/terminal', {
      params: { id: s.id },
      query: { node: this.node, tab: this.tab, cols: this.term.cols, rows: this.term.rows },
    });
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}${where}`, ['berth.v1', `bearer.${s.token}`]);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.generation++;
    this.owed = 0;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => this.onFrame(new Uint8Array(ev.data as ArrayBuffer));
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.disposed) return;
      this.ws = undefined;
      this.owed = 0;
      if (ev.code === CLOSE.BAD_TOKEN) return this.setState({ kind: 'unauthorized' });
      if (ev.code === CLOSE.GONE) return this.setState({ kind: 'gone' });
      if (ev.code === CLOSE.LOST) {
        return this.setState({
          kind: 'gone',
          lost: this.lastError ?? 'The machine running this sandbox went away.',
          maintenance: this.lastErrorCode === 'MACHINE_MAINTENANCE',
        });
      }
      if (this.state.kind === 'exited') return;
      if (ev.code === CLOSE.PROTOCOL) return this.setState({ kind: 'failed', message: ev.reason || 'The server refused this terminal.' });
      if (opened) this.attempt = 0;
      const inMs = DELAYS[Math.min(this.attempt, DELAYS.length - 1)];
      this.attempt++;
      this.setState({ kind: 'reconnecting', attempt: this.attempt, inMs, code: ev.code });
      this.retryTimer = setTimeout(() => this.connect(), inMs);
    };
  }

  /** Reconnects now instead of waiting for the backoff. */
  retryNow() {
    this.attempt = 0;
    this.ws?.close();
    this.connect();
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    this.resizeObserver.disconnect();
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(CLOSE.NORMAL);
    this.term.dispose();
  }

  private onFrame(f: Uint8Array) {
    const body = f.subarray(1);
    switch (f[0]) {
      case OP.OUTPUT: {
        const n = body.length;
        const gen = this.generation;
        this.term.write(body, () => {
          if (gen === this.generation) this.ack(n);
        });
        break;
      }
      case OP.STATUS: {
        const st = JSON.parse(this.decoder.decode(body)) as { state?: string };
        if (st.state === 'exited') {
          this.setState({ kind: 'exited' });
          break;
        }
        // The server replays the tab's recent output next: start from a clean screen so it is not doubled.
        if (st.state === 'reconnected') this.term.reset();
        this.setState({ kind: 'ready', reattached: st.state === 'reconnected' });
        this.refit();
        for (const t of this.pending.splice(0)) this.sendBytes(this.encoder.encode(t));
        break;
      }
      case OP.ERROR: {
        const e = JSON.parse(this.decoder.decode(body)) as { code?: string; message?: string };
        this.lastError = e.message;
        this.lastErrorCode = e.code;
        this.term.write(`\r\n\x1b[31m${e.message ?? e.code ?? 'terminal error'}\x1b[0m\r\n`);
        if (this.state.kind !== 'ready') this.setState({ kind: 'failed', message: e.message ?? 'The terminal could not open.' });
        break;
      }
    }
  }

  private ack(n: number) {
    this.owed += n;
    if (this.owed >= ACK_EVERY) this.flushAck();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAck(), 25);
  }

  private flushAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.owed || this.ws?.readyState !== WebSocket.OPEN) return;
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, this.owed);
    this.owed = 0;
    this.sendFrame(OP.ACK, b);
  }

  private sendBytes(data: Uint8Array) {
    this.sendFrame(OP.INPUT, data);
  }

  private sendFrame(op: number, data: Uint8Array) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    const f = new Uint8Array(data.length + 1);
    f[0] = op;
    f.set(data, 1);
    this.ws.send(f);
  }

  private setState(s: TermState) {
    this.state = s;
    this.onState(this, s);
  }
}

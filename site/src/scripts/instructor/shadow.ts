// The instructor's view of one learner's terminal tab (same binary protocol as the learner's terminal).
// Read-only: nothing typed here is sent. Take-over: keystrokes go to the learner's shell. The view takes
// the size of the learner's terminal, which the server reports in its first STATUS frame.
import { CLOSE, OP } from '../../../../sandbox-server/terminal/protocol.ts';
import { routePath } from '../client.ts';
import { currentTheme } from '../theme.ts';
import { TERM_THEMES } from '../terminal.ts';

type Lib = typeof import('../xterm-lib.ts');

export type ShadowOptions = { workshopId: string; learnerId: string; ticket: string; takeover: boolean; node: string; tab: string; as?: string };

export class ShadowTerminal {
  private host: HTMLElement;
  private status: (text: string) => void;
  private ws: WebSocket | undefined;
  private term: InstanceType<Lib['Terminal']> | undefined;
  private closed = false;

  constructor(host: HTMLElement, status: (text: string) => void) {
    this.host = host;
    this.status = status;
  }

  async open(o: ShadowOptions) {
    const lib = await import('../xterm-lib.ts');
    if (this.closed) return;
    this.host.replaceChildren();
    const term = new lib.Terminal({
      fontSize: 13,
      scrollback: 3000,
      cursorBlink: o.takeover,
      disableStdin: !o.takeover,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
      theme: TERM_THEMES[currentTheme()],
    });
    this.term = term;
    term.open(this.host);
    term.textarea?.setAttribute('aria-label', o.takeover ? 'Learner terminal (you are typing into it)' : 'Learner terminal (read-only)');
    const where = routePath('GET /api/workshops/:id/learners/:learner/terminal', {
      params: { id: o.workshopId, learner: o.learnerId },
      query: {
        node: o.node,
        tab: o.tab,
        cols: term.cols,
        rows: term.rows,
        ticket: o.ticket,
        ...(o.takeover ? { takeover: '1' } : {}),
        ...(o.as ? { as: o.as } : {}),
      },
    });
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}${where}`, ['berth.v1']);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.status('Connecting…');
    const enc = new TextEncoder();
    const frame = (op: number, body: Uint8Array) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const b = new Uint8Array(body.length + 1);
      b[0] = op;
      b.set(body, 1);
      ws.send(b);
    };
    if (o.takeover) term.onData((d) => frame(OP.INPUT, enc.encode(d)));
    ws.onmessage = (ev) => {
      const b = new Uint8Array(ev.data as ArrayBuffer);
      const body = b.subarray(1);
      if (b[0] === OP.OUTPUT) {
        // Acknowledge once rendered, so the server's flow control sees a real reader.
        term.write(body, () => {
          const a = new Uint8Array(4);
          new DataView(a.buffer).setUint32(0, body.length);
          frame(OP.ACK, a);
        });
      } else if (b[0] === OP.STATUS) {
        const s = JSON.parse(new TextDecoder().decode(body)) as { state: string; cols?: number; rows?: number; learner?: string };
        if (s.state === 'watching' && s.cols && s.rows) term.resize(s.cols, s.rows);
        if (s.state === 'exited') this.status("The learner's shell in this tab ended.");
        else
          this.status(
            o.takeover
              ? `Your keystrokes go to ${s.learner ?? 'the learner'}'s shell. They see that you have taken over.`
              : 'Watching. Nothing you type is sent. The learner sees that you are watching.',
          );
      } else if (b[0] === OP.ERROR) {
        const e = JSON.parse(new TextDecoder().decode(body)) as { message: string };
        this.status(e.message);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.closed) return;
      if (ev.code === CLOSE.BAD_TOKEN) this.status('The server refused the instructor credential.');
      else if (ev.code === CLOSE.GONE) this.status('This learner has no sandbox any more.');
      else if (ev.code !== CLOSE.NORMAL) this.status(`Disconnected (${ev.code}). Click Watch to connect again.`);
    };
    if (o.takeover) term.focus();
  }

  close() {
    this.closed = true;
    this.ws?.close();
    this.term?.dispose();
    this.host.replaceChildren();
  }
}

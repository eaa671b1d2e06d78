// Time from a moment the caller chose (t0) to the prompt on a session's terminal WebSocket.
import { OP } from '../../../sandbox-server/terminal/protocol.ts';
import { openTerminal, plain } from '../../helpers/terminal.ts';

/** Opens node1's terminal and resolves when the frame carrying the prompt's first characters arrives. */
export async function promptAfter(url: string, id: string, token: string, t0: number): Promise<{ firstByteMs: number; promptMs: number }> {
  const term = await openTerminal(url, id, token);
  // Attached before the first message event can run: `open` and each message are separate tasks.
  let firstByteMs = NaN;
  let text = '';
  try {
    const promptMs = await new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no prompt within 60 s: ${JSON.stringify(plain(text))}`)), 60_000);
      term.ws.addEventListener('message', (ev) => {
        const f = Buffer.from(ev.data as ArrayBuffer);
        if (f[0] !== OP.OUTPUT) return;
        const now = performance.now() - t0;
        if (Number.isNaN(firstByteMs)) firstByteMs = now;
        text += f.subarray(1).toString('utf8');
        if (/learner@node1/.test(plain(text))) { clearTimeout(timer); ok(now); }
      });
    });
    return { firstByteMs, promptMs };
  } finally {
    term.close();
  }
}

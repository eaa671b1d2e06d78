// Time from a moment the caller chose (t0) to the prompt on a session's terminal WebSocket.
import { connectTerminal, plain } from '../../helpers/terminal.ts';

/** Opens node1's terminal and resolves when the frame carrying the prompt's first characters arrives. */
export async function promptAfter(url: string, id: string, token: string, t0: number): Promise<{ firstByteMs: number; promptMs: number }> {
  const q = new URLSearchParams({ node: 'node1', tab: '1', cols: '100', rows: '30' });
  const term = connectTerminal(`${url.replace(/^http/, 'ws')}/api/sessions/${id}/terminal?${q}`, token, { keepText: false });
  let firstByteMs = NaN;
  let text = '';
  try {
    // Subscribed before the socket opens, so no frame can arrive unseen.
    const promptMs = await new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no prompt within 60 s: ${JSON.stringify(plain(text))}`)), 60_000);
      term.opened.catch((err: unknown) => {
        clearTimeout(timer);
        fail(err);
      });
      term.onData((data) => {
        const now = performance.now() - t0;
        if (Number.isNaN(firstByteMs)) firstByteMs = now;
        text += data.toString('utf8');
        if (/learner@node1/.test(plain(text))) {
          clearTimeout(timer);
          ok(now);
        }
      });
    });
    return { firstByteMs, promptMs };
  } finally {
    term.close();
  }
}

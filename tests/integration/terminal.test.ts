// The web terminal through the real server and engine: round trip, resize, reconnect, origin and token checks.
import test from 'ava';
import { request } from 'node:http';
import { createSession, startServer, type TestServer } from '../helpers/server.ts';
import { openTerminal, plain, type TermClient } from '../helpers/terminal.ts';

let s: TestServer;
test.before(async () => { s = await startServer(); });
test.after.always(async () => { await s?.stop(); });

/** Types a command and returns the first capture of `re` in what the terminal printed after it. */
async function lineAfter(term: TermClient, cmd: string, re: RegExp): Promise<string> {
  const from = term.mark();
  term.send(`${cmd}\r`);
  await term.waitFor(re, { from });
  return re.exec(plain(term.output().slice(-(term.mark() - from))))![1];
}

test.serial('terminal round trip, resize reaches the TTY, reconnect returns the same shell', async (t) => {
  const c = await createSession(s);
  try {
    const term = await openTerminal(s.url, c.id, c.token);
    await term.waitFor(/learner@node1\S*\$ /);
    term.send('echo round-$((40+2))-trip\r');
    await term.waitFor(/round-42-trip/);
    // A resize can reach the TTY after the next command: ask until the shell answers with the new size (bounded).
    term.resize(123, 45);
    let size = '';
    for (let i = 0; i < 20 && size !== '45 123'; i++) size = await lineAfter(term, 'stty size', /\n\r?(\d+ \d+)\r/);
    t.is(size, '45 123');
    t.is(await lineAfter(term, 'export BERTH_MARK=kept-$((6*7)); echo "exported=$BERTH_MARK"', /\n\r?(exported=\S*)\r/), 'exported=kept-42');
    term.close();
    t.is((await term.closed).code, 1005);

    const again = await openTerminal(s.url, c.id, c.token);
    t.is(await lineAfter(again, 'echo "mark=$BERTH_MARK"', /\n\r?(mark=\S*)\r/), 'mark=kept-42', 'the same shell after a reconnect');
    const tab2 = await openTerminal(s.url, c.id, c.token, { tab: '2' });
    t.is(await lineAfter(tab2, 'echo "tab2=${BERTH_MARK:-unset}"', /\n\r?(tab2=\S*)\r/), 'tab2=unset', 'a second tab is a different shell');
    again.close(); tab2.close();
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

test.serial('terminal refuses a wrong token, a foreign origin and an unknown session', async (t) => {
  const c = await createSession(s);
  try {
    // A wrong token closes like an unknown session: no oracle for which sessions exist.
    const bad = await openTerminal(s.url, c.id, 'y'.repeat(43));
    t.is((await bad.closed).code, 4404);
    const gone = await openTerminal(s.url, 'nosuchsession', c.token);
    t.is((await gone.closed).code, 4404);
    // A foreign Origin is refused before the handshake completes; the allowed one is upgraded.
    t.is(await upgradeStatus(s.port, c.id, c.token, 'http://evil.example'), 403);
    t.is(await upgradeStatus(s.port, c.id, c.token, `http://localhost:${s.port}`), 101);
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

function upgradeStatus(port: number, id: string, token: string, origin: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request({
      host: '127.0.0.1', port, path: `/api/sessions/${id}/terminal`,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': `berth.v1, bearer.${token}`, origin },
    });
    req.on('response', (res) => { res.resume(); ok(res.statusCode ?? 0); });
    req.on('upgrade', (_res, socket) => { socket.destroy(); ok(101); });
    req.on('error', fail);
    req.end();
  });
}

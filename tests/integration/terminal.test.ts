// The web terminal through the real server and engine: round trip, resize, reconnect, origin and token checks.
import test from 'ava';
import { request } from 'node:http';
import { createSession, startServer, type TestServer } from '../helpers/server.ts';
import { openTerminal } from '../helpers/terminal.ts';

let s: TestServer;
test.before(async () => { s = await startServer(); });
test.after.always(async () => { await s?.stop(); });

test.serial('terminal round trip, resize reaches the TTY, reconnect returns the same shell', async (t) => {
  const c = await createSession(s);
  try {
    const term = await openTerminal(s.url, c.id, c.token);
    await term.waitFor(/learner@node1\S*\$ /);
    term.send('echo round-$((40+2))-trip\r');
    await term.waitFor(/round-42-trip/);
    term.resize(123, 45);
    await new Promise((r) => setTimeout(r, 300));
    term.send('stty size\r');
    await term.waitFor(/45 123/);
    term.send('export BERTH_MARK=kept-$((6*7))\r');
    await new Promise((r) => setTimeout(r, 300));
    term.close();
    t.is((await term.closed).code, 1005);

    const again = await openTerminal(s.url, c.id, c.token);
    again.send('echo "mark=$BERTH_MARK"\r');
    await again.waitFor(/mark=kept-42/);
    // A second tab is a different shell.
    const tab2 = await openTerminal(s.url, c.id, c.token, { tab: '2' });
    tab2.send('echo "tab2=${BERTH_MARK:-unset}"\r');
    await tab2.waitFor(/tab2=unset/);
    again.close(); tab2.close();
    t.pass();
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

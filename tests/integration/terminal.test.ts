// The web terminal through the real server and engine: round trip, resize, reconnect, origin and token checks.
import test from 'ava';
import { request } from 'node:http';
import { exec, startServer, type TestServer, withSession } from '../helpers/server.ts';
import { lineAfter, openTerminal, sizeSeen } from '../helpers/terminal.ts';

let s: TestServer;
test.before(async () => {
  s = await startServer();
});
test.after.always(async () => {
  await s?.stop();
});

test.serial('terminal round trip, resize reaches the TTY, reconnect returns the same shell', async (t) => {
  await withSession(s, {}, async (c) => {
    const term = await openTerminal(s.url, c.id, c.token);
    await term.waitFor(/learner@node1\S*\$ /);
    term.send('echo round-$((40+2))-trip\r');
    await term.waitFor(/round-42-trip/);
    term.resize(123, 45);
    t.is(await sizeSeen(term, 123, 45), '45 123');
    t.is(await lineAfter(term, 'export BERTH_MARK=kept-$((6*7)); echo "exported=$BERTH_MARK"', /\n\r?(exported=\S*)\r/), 'exported=kept-42');
    term.close();
    t.is((await term.closed).code, 1005);

    const again = await openTerminal(s.url, c.id, c.token);
    t.is(await lineAfter(again, 'echo "mark=$BERTH_MARK"', /\n\r?(mark=\S*)\r/), 'mark=kept-42', 'the same shell after a reconnect');
    const tab2 = await openTerminal(s.url, c.id, c.token, { tab: '2' });
    t.is(await lineAfter(tab2, 'echo "tab2=${BERTH_MARK:-unset}"', /\n\r?(tab2=\S*)\r/), 'tab2=unset', 'a second tab is a different shell');
    again.close();
    tab2.close();
  });
});

test.serial('terminal refuses a wrong token, a foreign origin and an unknown session', async (t) => {
  await withSession(s, {}, async (c) => {
    // A wrong token closes like an unknown session: no oracle for which sessions exist.
    const bad = await openTerminal(s.url, c.id, 'y'.repeat(43));
    t.is((await bad.closed).code, 4404);
    const gone = await openTerminal(s.url, 'nosuchsession', c.token);
    t.is((await gone.closed).code, 4404);
    // A foreign Origin is refused before the handshake completes; the allowed one is upgraded.
    t.is(await upgradeStatus(s.port, c.id, c.token, 'http://evil.example'), 403);
    t.is(await upgradeStatus(s.port, c.id, c.token, `http://localhost:${s.port}`), 101);
  });
});

test.serial('Ctrl-P Ctrl-Q typed in the web terminal detaches from docker run -it and docker attach in the learner engine', async (t) => {
  await withSession(s, {}, async (c) => {
    const term = await openTerminal(s.url, c.id, c.token);
    await term.waitFor(/learner@node1\S*\$ /);
    let mark = term.mark();
    term.send('docker run -it --name dk busybox sh\r');
    await term.waitFor(/\/ # $/, { from: mark, timeoutMs: 60_000 });
    // The real sequence, as xterm.js sends it: Ctrl-P is 0x10, Ctrl-Q is 0x11.
    mark = term.mark();
    term.send('\x10\x11');
    await term.waitFor(/learner@node1\S*\$ $/, { from: mark });
    // The prompt is the learner's own shell (not the container's, not a reconnected one): it still has $USER.
    mark = term.mark();
    term.send('echo "back-as=$USER"\r');
    await term.waitFor(/back-as=learner/, { from: mark });
    t.is((await exec(s, c, "docker inspect -f '{{.State.Running}}' dk")).stdout.trim(), 'true');

    // docker attach, then detach again the same way.
    mark = term.mark();
    term.send('docker attach dk\r');
    // docker attach prints nothing once it is attached: a line typed before it reads the terminal could go
    // nowhere, so it is given a second (nothing to wait on).
    await new Promise((r) => setTimeout(r, 1000));
    term.send('echo "inside-$((6*7))"\r');
    await term.waitFor(/inside-42[\s\S]*\/ # $/, { from: mark });
    mark = term.mark();
    term.send('\x10\x11');
    await term.waitFor(/learner@node1\S*\$ $/, { from: mark });
    t.is((await exec(s, c, "docker inspect -f '{{.State.Running}}' dk")).stdout.trim(), 'true');
    t.is(term.ws.readyState, WebSocket.OPEN, 'the web terminal itself stayed connected');
    term.close();
  });
});

function upgradeStatus(port: number, id: string, token: string, origin: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: `/api/sessions/${id}/terminal`,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-protocol': `berth.v1, bearer.${token}`,
        origin,
      },
    });
    req.on('response', (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      ok(101);
    });
    req.on('error', fail);
    req.end();
  });
}

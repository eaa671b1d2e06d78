// The pty stream of an Incus exec, against a loopback websocket peer that speaks incusd's framing
// (binary = data, empty text = end of stream, closing control = kill). Protocol only: the real
// engine is exercised in tests/integration/incus-engine.test.ts.
import test from 'ava';
import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { ExecStream, isBarrier } from '../../sandbox-server/engine/incus/exec.ts';

async function pair() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const peers: WebSocket[] = [];
  server.on('connection', (ws) => peers.push(ws));
  const data = new WebSocket(`ws://127.0.0.1:${port}`);
  const control = new WebSocket(`ws://127.0.0.1:${port}`);
  await Promise.all([once(data, 'open'), once(control, 'open')]);
  while (peers.length < 2) await new Promise((r) => setTimeout(r, 5));
  return { server, data, control, peers };
}

test('binary messages are data, an empty text message ends the stream', async (t) => {
  t.true(isBarrier(false));
  t.false(isBarrier(true));
  const { server, data, control, peers } = await pair();
  const stream = new ExecStream(data, control);
  const got: Buffer[] = [];
  stream.on('data', (b: Buffer) => got.push(b));
  peers[0].send(Buffer.from('hello '), { binary: true });
  peers[0].send(Buffer.from('world'), { binary: true });
  peers[0].send('');
  await once(stream, 'end');
  t.is(Buffer.concat(got).toString(), 'hello world');
  stream.destroy();
  server.close();
});

test('writes arrive as binary messages; destroy closes the control socket (which kills the command)', async (t) => {
  const { server, data, control, peers } = await pair();
  const stream = new ExecStream(data, control);
  const [inData, inControl] = peers;
  const received = once(inData, 'message');
  stream.write(Buffer.from('ls\r'));
  const [msg, isBinary] = await received;
  t.true(isBinary);
  t.is((msg as Buffer).toString(), 'ls\r');
  const closed = once(inControl, 'close');
  stream.destroy();
  await closed;
  t.is(inControl.readyState, WebSocket.CLOSED, 'incusd sees its control socket close, which kills the command');
  server.close();
});

test('backpressure: a reader that stops pulling pauses the websocket, and reading resumes it', async (t) => {
  const { server, data, control, peers } = await pair();
  const stream = new ExecStream(data, control);
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; i < 8; i++) peers[0].send(chunk, { binary: true });
  await new Promise((r) => setTimeout(r, 200));
  t.true(data.isPaused, 'paused past the readable high-water mark');
  let total = 0;
  stream.on('data', (b: Buffer) => {
    total += b.length;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.is(total, 8 * 64 * 1024);
  t.false(data.isPaused);
  stream.destroy();
  server.close();
});

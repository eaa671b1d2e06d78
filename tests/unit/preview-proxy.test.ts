// The preview proxy (preview/proxy.ts) over the provider's openPort: the apps behind a node's ports are Node HTTP
// servers in this process, each connection handed to them as one end of an in-memory stream pair (FakeProvider
// `apps`), so what is tested is the proxy alone, whatever stream the provider gives it (a socket, or Incus's
// relay). The proxy sits in a loopback HTTP server wired as main.ts wires it. The relay itself, on a real node,
// is tests/integration/incus-preview-relay.test.ts.
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { buildApp, type Harness } from '../helpers/app-harness.ts';
import { eventually } from '../helpers/wait.ts';

/** An app: a Node HTTP server fed the connections openPort makes (it never listens). */
function app(h: Harness, port: number, handle: Parameters<typeof createServer>[1]) {
  const server = createServer(handle);
  h.provider.apps.set(port, (conn: Duplex) => server.emit('connection', conn));
  return server;
}

async function setup(t: ExecutionContext) {
  const h = buildApp();
  const { id, token } = await h.session();
  const proxy: Server = createServer((req, res) => {
    const target = h.preview.match(req);
    if (!target) {
      res.writeHead(404);
      res.end();
      return;
    }
    void h.preview.http(req, res, target);
  });
  proxy.on('upgrade', (req, socket, head) => {
    const target = h.preview.match(req);
    if (target) void h.preview.upgrade(req, socket, head, target);
    else socket.destroy();
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const port = (proxy.address() as AddressInfo).port;
  t.teardown(() => {
    proxy.closeAllConnections();
    proxy.close();
    h.close();
  });
  return { h, id, token, port };
}

type Answer = { status: number; headers: IncomingHttpHeaders; body: string };

function get(port: number, path: string, token: string, { method = 'GET', body }: { method?: string; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => {
        text += b;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

test("HTTP through openPort's stream: the app gets the request and its body, the browser the answer", async (t) => {
  const { h, id, token, port } = await setup(t);
  const seen: { url?: string; prefix?: string | string[]; auth?: string; bytes?: number } = {};
  app(h, 8080, (req, res) => {
    seen.url = req.url;
    seen.prefix = req.headers['x-forwarded-prefix'];
    seen.auth = req.headers.authorization;
    let n = 0;
    req.on('data', (b: Buffer) => {
      n += b.length;
    });
    req.on('end', () => {
      seen.bytes = n;
      res.writeHead(200, { 'content-type': 'text/plain', location: '/next' });
      res.end(`hello ${n}`);
    });
  });
  const r = await get(port, `/p/${id}/node1/8080/form?x=1`, token, { method: 'POST', body: Buffer.alloc(300_000, 7) });
  t.is(r.status, 200, r.body);
  t.is(r.body, 'hello 300000');
  t.is(r.headers.location, `/p/${id}/node1/8080/next`, 'Location rewritten into the preview, as before');
  t.regex(String(r.headers['content-security-policy']), /^sandbox /);
  t.deepEqual(seen, { url: '/form?x=1', prefix: `/p/${id}/node1/8080`, auth: undefined, bytes: 300_000 });
  t.is(h.provider.opened.length, 1);
});

test('plain requests to one port keep their connection between requests; removing the session closes it', async (t) => {
  const { h, id, token, port } = await setup(t);
  app(h, 8080, (req, res) => res.end(`page ${req.url}`));
  for (const path of ['/a', '/b', '/c']) {
    const r = await get(port, `/p/${id}/node1/8080${path}`, token);
    t.is(r.body, `page ${path}`);
  }
  t.is(h.provider.opened.length, 1, 'one connection (a relay: one exec) for three requests');
  t.false(h.provider.opened[0].destroyed);
  t.is((await h.request(`/api/sessions/${id}`, { method: 'DELETE', token })).status, 204);
  await eventually(() => (h.provider.opened[0].destroyed ? true : undefined), { what: 'the kept connection closed with the session' });
});

test('an upgrade goes through the stream both ways, and the stream ends when the browser leaves', async (t) => {
  const { h, id, token, port } = await setup(t);
  const wss = new WebSocketServer({ noServer: true });
  const server = app(h, 9000, (_req, res) => res.end('plain'));
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (m) => ws.send(`echo ${String(m)}`));
    }),
  );
  const ws = new WebSocket(`ws://127.0.0.1:${port}/p/${id}/node1/9000/`, { headers: { authorization: `Bearer ${token}` } });
  await once(ws, 'open');
  ws.send('hi');
  const [m] = await once(ws, 'message');
  t.is(String(m), 'echo hi');
  ws.close();
  await eventually(() => (h.provider.opened[0]?.destroyed ? true : undefined), { what: 'the upstream stream closed with the WebSocket' });

  // A browser that vanishes (its connection reset, no closing handshake, no FIN): the upstream goes with it.
  const raw = connect(port, '127.0.0.1');
  raw.write(
    `GET /p/${id}/node1/9000/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  const [head] = (await once(raw, 'data')) as [Buffer];
  t.regex(head.toString(), /^HTTP\/1\.1 101 /);
  t.is(h.provider.opened.length, 2);
  raw.resetAndDestroy();
  await eventually(() => (h.provider.opened[1].destroyed ? true : undefined), { what: 'the upstream stream destroyed when the browser vanished' });
  wss.close();
});

test('a refused port: 502 PREVIEW_UNREACHABLE with the hint for a request, a 502 refusal for an upgrade', async (t) => {
  const { id, token, port } = await setup(t);
  const r = await get(port, `/p/${id}/node1/8099/`, token);
  t.is(r.status, 502);
  const e = JSON.parse(r.body) as { error: { code: string; message: string } };
  t.is(e.error.code, 'PREVIEW_UNREACHABLE');
  t.is(e.error.message, 'Nothing answers on port 8099 of node1. Is the container running, with the port published (-p 8099:…)?');

  const ws = new WebSocket(`ws://127.0.0.1:${port}/p/${id}/node1/8099/`, { headers: { authorization: `Bearer ${token}` } });
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
  t.is(res.statusCode, 502);
  let body = '';
  for await (const b of res) body += b;
  t.is((JSON.parse(body) as { error: { code: string } }).error.code, 'PREVIEW_UNREACHABLE');
});

test('a connection the app resets is 502 naming the cause; a browser that leaves mid-answer closes the stream', async (t) => {
  const { h, id, token, port } = await setup(t);
  // The app's side goes away without an answer: Node's HTTP client calls that a hang-up (ECONNRESET).
  h.provider.apps.set(8081, (conn) => conn.once('data', () => conn.destroy()));
  const r = await get(port, `/p/${id}/node1/8081/`, token);
  t.is(r.status, 502);
  t.regex(r.body, /Port 8081 of node1 did not answer \(ECONNRESET\)/);

  app(h, 8082, (_req, res) => {
    res.writeHead(200);
    res.write('tick\n');
    // Never ends: only the browser leaving stops it.
  });
  await new Promise<void>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path: `/p/${id}/node1/8082/`, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.once('data', () => {
        req.destroy();
        ok();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : fail(err)));
    req.end();
  });
  const slow = h.provider.opened.at(-1)!;
  await eventually(() => (slow.destroyed ? true : undefined), { what: 'the upstream stream destroyed when the browser left' });
  t.true(slow.destroyed);
});

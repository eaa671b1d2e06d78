// Previews relayed through Incus (issue 18): on a cluster a session's nodes may sit on another member, whose
// bridge this server has no route to, so the preview proxy reaches the node's port through an exec (socat in
// the node, over the exec's stdin and stdout). Here on one host with BERTH_INCUS_PREVIEW_RELAY=always, which
// takes that path for every preview: pages, a 2 MiB upload, an answer that ends by closing, a WebSocket, a
// refused port, and nothing left behind (no socat in the node, no exec operation in Incus) once the browser
// is done or goes away mid-answer.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { createSession, exec, startServer, type Created, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

const SOCKET = process.env.BERTH_INCUS_SOCKET ?? '/var/lib/incus/unix.socket';
const it = existsSync(SOCKET) ? test.serial : test.serial.skip;

let s: TestServer;
let c: Created;
const incus = new IncusClient({ socketPath: SOCKET });

// An app in plain Node (the catalog's node image, no packages): GET / and POST / describe the request (the
// body's length and SHA-256), /close answers HTTP/1.0 style (no length: the answer ends when the app closes
// its side), /slow never ends, and an upgrade is a WebSocket echo (short text frames).
const APP = String.raw`
const http = require('http'), crypto = require('crypto');
const s = http.createServer((q, r) => {
  if (q.url === '/slow') {
    r.writeHead(200, { 'content-type': 'text/plain' });
    const t = setInterval(() => r.write('tick\n'), 100);
    r.on('close', () => clearInterval(t));
    return;
  }
  if (q.url === '/close') {
    q.socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n' + 'z'.repeat(300000));
    q.socket.end();
    return;
  }
  const h = crypto.createHash('sha256');
  let n = 0;
  q.on('data', (b) => { n += b.length; h.update(b); });
  q.on('end', () => r.end(JSON.stringify({ method: q.method, url: q.url, bytes: n, sha256: h.digest('hex') })));
});
s.on('upgrade', (req, sock) => {
  const key = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + key + '\r\n\r\n');
  sock.on('data', (b) => {
    if ((b[0] & 15) === 8) return sock.end();
    const len = b[1] & 127, mask = b.subarray(2, 6), data = Buffer.from(b.subarray(6, 6 + len));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
    sock.write(Buffer.concat([Buffer.from([0x81, data.length]), data]));
  });
});
s.listen(9000);`;

test.before(async () => {
  if (!existsSync(SOCKET)) return;
  s = await startServer({
    BERTH_PROVIDER: 'incus',
    BERTH_INCUS_PREVIEW_RELAY: 'always',
    BERTH_MAX_SANDBOXES: '2',
    BERTH_SANDBOX_MEMORY: '1g',
    BERTH_SANDBOX_DISK: '4g',
    BERTH_EGRESS_ALLOW: hostname(),
  });
  c = await createSession(s);
  const put = await s.api(`/api/sessions/${c.id}/files?path=app.js`, { method: 'PUT', token: c.token, json: { content: APP } });
  if (put.status !== 200) throw new Error(`writing app.js: ${put.status} ${await put.text()}`);
  const r = await exec(s, c, 'docker run -d --name web -p 8080:80 nginx && docker run -d --name app -p 9000:9000 -v "$PWD/app.js:/app.js" node node /app.js', {
    timeoutMs: 120_000,
  });
  if (r.exitCode !== 0) throw new Error(`starting the apps: ${r.stderr}`);
});
test.after.always(async () => {
  if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s?.stop();
});

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/** A request to the preview with the session's token, read whole. */
function preview(port: number, path = '/', { method = 'GET', body, agent }: { method?: string; body?: Buffer; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = request(
      { host: '127.0.0.1', port: s.port, method, agent, path: `/p/${c.id}/node1/${port}${path}`, headers: { authorization: `Bearer ${c.token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

/** The relays running in the node: socat started by the preview relay (not the node's own :2375 socat). */
async function relays(): Promise<string[]> {
  const r = await exec(s, c, "pgrep -af '^socat -d -d -t' || true");
  return r.stdout.split('\n').filter((l) => l.includes('socat'));
}

/** Exec operations Incus still runs on the node (the relays' and anything else's). */
async function execOperations(): Promise<string[]> {
  const ops = await incus.get<{ running?: { id: string; description: string; resources?: { instances?: string[] } | null }[] }>('/1.0/operations?recursion=1');
  const name = instanceName(c.id, 'node1');
  return (ops.running ?? [])
    .filter((o) => /exec/i.test(o.description) && (o.resources?.instances ?? []).some((i) => i.endsWith(`/${name}`)))
    .map((o) => `${o.id} ${o.description}`);
}

/** Waits until neither a relay nor an exec operation is left, other than the checking exec itself. */
async function nothingLeft(what: string) {
  await eventually(async () => ((await relays()).length === 0 ? true : undefined), { what: `no relay socat left in the node ${what}` });
  // The listing's own exec (pgrep above) has ended by now; none of the relays' may still run.
  await eventually(async () => ((await execOperations()).length === 0 ? true : undefined), { what: `no exec operation left in Incus ${what}` });
}

it("nginx's page comes through the relay, and no relay outlives its connection", async (t) => {
  const page = await eventually(
    async () => {
      const r = await preview(8080);
      return r.status === 200 ? r : undefined;
    },
    { what: "nginx's page through the preview", timeoutMs: 60_000 },
  );
  t.regex(page.body.toString(), /Welcome to nginx!/);
  // A browser keeps its connection to Berth: several requests on one connection (Berth keeps the relay between them).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 4; i++) {
    const r = await preview(8080, `/?n=${i}`, { agent });
    t.is(r.status, 200);
    t.regex(r.body.toString(), /Welcome to nginx!/);
  }
  agent.destroy();
  await nothingLeft('after plain requests');
});

it('a 2 MiB upload reaches the app whole, and its answer comes back', async (t) => {
  await eventually(async () => ((await preview(9000)).status === 200 ? true : undefined), { what: 'the app on 9000', timeoutMs: 60_000 });
  const body = randomBytes(2 * 1024 * 1024);
  const r = await preview(9000, '/upload', { method: 'POST', body });
  t.is(r.status, 200, r.body.toString());
  const seen = JSON.parse(r.body.toString()) as { method: string; url: string; bytes: number; sha256: string };
  t.deepEqual(seen, { method: 'POST', url: '/upload', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
});

it('an answer that ends by the app closing its side arrives whole (half-close)', async (t) => {
  const r = await preview(9000, '/close');
  t.is(r.status, 200);
  t.is(r.headers['content-length'], undefined);
  t.is(r.body.length, 300_000);
  t.true(r.body.every((b) => b === 0x7a));
  await nothingLeft('after an answer ended by closing');
});

it('a WebSocket upgrade echoes through the relay and its relay ends when the browser closes', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/p/${c.id}/node1/9000/`, { headers: { authorization: `Bearer ${c.token}` } });
  const got: string[] = [];
  await new Promise<void>((ok, fail) => {
    ws.on('open', () => ws.send('one'));
    ws.on('message', (data) => {
      got.push(String(data));
      if (got.length === 1) ws.send('two');
      else ok();
    });
    ws.on('error', fail);
  });
  t.deepEqual(got, ['one', 'two']);
  t.is((await relays()).length, 1, 'the open WebSocket is one relay in the node');
  ws.close();
  await nothingLeft('after the WebSocket closed');
});

it('a port nobody listens on is 502 PREVIEW_UNREACHABLE with the hint, through the relay as directly', async (t) => {
  const r = await preview(8099);
  t.is(r.status, 502);
  const e = JSON.parse(r.body.toString()) as { error: { code: string; message: string } };
  t.is(e.error.code, 'PREVIEW_UNREACHABLE');
  t.regex(e.error.message, /^Nothing answers on port 8099 of node1\./);
  await nothingLeft('after a refused port');
});

it('a browser that leaves mid-answer ends the relay (the command is killed, no operation stays)', async (t) => {
  const first = await new Promise<string>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: s.port, path: `/p/${c.id}/node1/9000/slow`, headers: { authorization: `Bearer ${c.token}` } }, (res) => {
      res.once('data', (b: Buffer) => {
        ok(b.toString());
        req.destroy();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : fail(err)));
    req.end();
  });
  t.regex(first, /^tick/);
  await nothingLeft('after the browser left');
});

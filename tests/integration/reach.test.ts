// Sandbox reach against the real engine: browser previews of published ports (HTTP and WebSocket),
// the editor's file API, and nodes added and removed at run time.
import test from 'ava';
import { request } from 'node:http';
import { createSession, exec, startServer, type Created, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

let s: TestServer;
let c: Created;
test.before(async () => {
  s = await startServer({ BERTH_MAX_SANDBOXES: '4', BERTH_FILE_MAX: '64k', BERTH_PREVIEW_DOMAIN: 'preview.localhost' });
  c = await createSession(s);
});
test.after.always(async () => {
  if (c) await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s?.stop();
});

type Port = { node: string; port: number; container: string; image: string; shared: boolean; url: string; pathUrl: string };
const json = async <T>(r: Response) => (await r.json()) as T;

/** GET with a chosen Host header (fetch cannot set one), no redirects followed. */
function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: s.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => {
        body += b;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

function waitPort(port: number, node = 'node1'): Promise<Port> {
  return eventually(
    async () =>
      (await json<{ ports: Port[] }>(await s.api(`/api/sessions/${c.id}/ports`, { token: c.token }))).ports.find((p) => p.port === port && p.node === node),
    { timeoutMs: 20_000, intervalMs: 500, what: `port ${port} on ${node} in the ports list` },
  );
}

/** f's answer once ok(answer), or its last answer after about 15 s (for the assertion that follows to show). */
async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let v!: T;
  return eventually(
    async () => {
      v = await f();
      return ok(v) ? v : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 500 },
  ).catch(() => v);
}

test.serial('docker run -d -p 8080:80 httpd, then the page opens through the preview', async (t) => {
  const run = await exec(s, c, 'docker run -d --name web -p 8080:80 httpd', { timeoutMs: 60_000 });
  t.is(run.exitCode, 0, run.stderr);
  const p = await waitPort(8080);
  t.is(p.container, 'web');
  t.regex(p.image, /httpd/);
  t.false(p.shared);
  const path = `/p/${c.id}/node1/8080/`;

  // With the session's token: the page.
  const page = await until(
    () => get(path, { authorization: `Bearer ${c.token}` }),
    (r) => r.status === 200,
  );
  t.is(page.status, 200, page.body);
  t.regex(page.body, /It works!/);

  // Without credentials, or with another session's token: refused, as JSON.
  const anon = await get(path);
  t.is(anon.status, 401);
  t.is(JSON.parse(anon.body).error.code, 'UNAUTHORIZED');
  t.is((await get(path, { authorization: 'Bearer ' + 'x'.repeat(43) })).status, 401);
  t.is((await get(`/p/${c.id}/node1/8080/?berth_ticket=zzzz.${'a'.repeat(43)}`)).status, 401, 'a forged ticket is refused');

  // The path link the workbench opens carries a key for this one port in its base; every answer on the path
  // scheme is sandboxed into an opaque origin, so no cookie is involved.
  const link = new URL(p.pathUrl);
  t.regex(link.pathname, new RegExp(`^/p/${c.id}\\.[A-Za-z0-9_-]{22}/node1/8080/$`));
  t.is(link.search, '');
  const withKey = await get(link.pathname);
  t.is(withKey.status, 200);
  t.regex(withKey.body, /It works!/);
  t.regex(String(withKey.headers['content-security-policy']), /^sandbox /);
  t.is(withKey.headers['set-cookie'], undefined);
  const key = link.pathname.split('/')[2].split('.')[1];
  t.is((await get(`/p/${c.id}.${key}/node1/8081/`)).status, 401, 'the key opens its own port only');
  t.is((await get(`/p/${c.id}.${'A'.repeat(22)}/node1/8080/`)).status, 401, 'a forged key is refused');

  // No trailing slash: redirected so that relative links resolve inside the preview.
  const bare = await get(link.pathname.slice(0, -1));
  t.is(bare.status, 308);
  t.is(bare.headers.location, link.pathname);

  // The host scheme: <session>-<node>-<port>.<preview domain>, its own origin.
  const host = `${c.id}-node1-8080.preview.localhost:${s.port}`;
  t.is(new URL(p.url).host, host);
  const hostLink = new URL(p.url).pathname + new URL(p.url).search;
  const hostSwap = await get(hostLink, { host });
  t.is(hostSwap.status, 303);
  t.regex(String(hostSwap.headers['set-cookie']), /Path=\//);
  t.is((await get(hostLink, { host })).status, 401, 'a ticket opens the preview once');
  t.is((await get(hostLink, { host: `${c.id}-node1-8081.preview.localhost:${s.port}` })).status, 401, 'a ticket is bound to its port');
  const viaHost = await get('/', { host, cookie: String(hostSwap.headers['set-cookie']).split(';')[0] });
  t.is(viaHost.status, 200);
  t.regex(viaHost.body, /It works!/);
  t.is((await get('/', { host })).status, 401);
});

test.serial('a port nobody listens on answers 502 with a hint; the engine API port is never proxied', async (t) => {
  const r = await get(`/p/${c.id}/node1/8099/`, { authorization: `Bearer ${c.token}` });
  t.is(r.status, 502);
  t.regex(JSON.parse(r.body).error.message, /Nothing answers on port 8099/);
  const api = await get(`/p/${c.id}/node1/2375/`, { authorization: `Bearer ${c.token}` });
  t.is(api.status, 403);
  t.is(JSON.parse(api.body).error.code, 'PORT_NOT_ALLOWED');
  t.is((await get(`/p/${c.id}/node9/8080/`, { authorization: `Bearer ${c.token}` })).status, 404);
});

test.serial("sharing a port opens it to anyone, sandboxed away from Berth's origin", async (t) => {
  const path = `/p/${c.id}/node1/8080/`;
  const on = await s.api(`/api/sessions/${c.id}/ports/node1/8080/share`, { method: 'POST', token: c.token, json: { shared: true } });
  t.is(on.status, 200);
  const shared = await json<{ shared: boolean; url: string }>(on);
  t.true(shared.shared);
  t.notRegex(shared.url, /berth_ticket/);
  const anon = await get(path);
  t.is(anon.status, 200);
  t.regex(String(anon.headers['content-security-policy']), /^sandbox /);
  await s.api(`/api/sessions/${c.id}/ports/node1/8080/share`, { method: 'POST', token: c.token, json: { shared: false } });
  t.is((await get(path)).status, 401);
});

// A WebSocket echo server in plain Node (no packages in the sandbox), run from the catalog's node image.
const ECHO = String.raw`
const http = require('http'), crypto = require('crypto');
const s = http.createServer((q, r) => r.end('echo server'));
s.on('upgrade', (req, sock) => {
  const key = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + key + '\r\n\r\n');
  sock.on('data', (b) => {
    const len = b[1] & 127, mask = b.subarray(2, 6), data = Buffer.from(b.subarray(6, 6 + len));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
    sock.write(Buffer.concat([Buffer.from([0x81, data.length]), data]));
  });
});
s.listen(9000);`;

test.serial('a WebSocket app behind a published port works through the preview', async (t) => {
  const put = await s.api(`/api/sessions/${c.id}/files?path=echo.js`, { method: 'PUT', token: c.token, json: { content: ECHO } });
  t.is(put.status, 200, await put.clone().text());
  const run = await exec(s, c, 'docker run -d --name echo -p 9000:9000 -v "$PWD/echo.js:/echo.js" node node /echo.js', { timeoutMs: 60_000 });
  t.is(run.exitCode, 0, run.stderr);
  const p = await waitPort(9000);
  await until(
    () => get(`/p/${c.id}/node1/9000/`, { authorization: `Bearer ${c.token}` }),
    (r) => r.status === 200,
  );

  // The path link's key opens the WebSocket too.
  const link = new URL(p.pathUrl);
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}${link.pathname}`);
  const echoed = await new Promise<string>((ok, fail) => {
    ws.addEventListener('open', () => ws.send('hello through berth'));
    ws.addEventListener('message', (ev) => ok(String(ev.data)));
    ws.addEventListener('error', () => fail(new Error('websocket failed')));
    setTimeout(() => fail(new Error('no echo')), 15_000);
  });
  ws.close();
  t.is(echoed, 'hello through berth');

  const refused = new WebSocket(`ws://127.0.0.1:${s.port}/p/${c.id}/node1/9000/`);
  const outcome = await new Promise<string>((ok) => {
    refused.addEventListener('open', () => ok('open'));
    refused.addEventListener('error', () => ok('refused'));
  });
  t.is(outcome, 'refused', 'no credentials, no WebSocket');
});

test.serial('file API: write, read, list, create, delete, binary, and the workspace boundary', async (t) => {
  const api = (path: string, init: Parameters<TestServer['api']>[1] = {}) =>
    s.api(`/api/sessions/${c.id}/files?path=${encodeURIComponent(path)}`, { token: c.token, ...init });

  const w = await api('app/Dockerfile', { method: 'PUT', json: { content: 'FROM busybox\nCMD ["echo", "hi ü"]\n' } });
  t.is(w.status, 200);
  t.deepEqual(await json(w), { path: 'app/Dockerfile', size: Buffer.byteLength('FROM busybox\nCMD ["echo", "hi ü"]\n') });
  const owner = await exec(s, c, 'stat -c %U app/Dockerfile && cat app/Dockerfile');
  t.is(owner.stdout, 'learner\nFROM busybox\nCMD ["echo", "hi ü"]\n', 'written as the learner, visible to the shell');

  const r = await json<{ type: string; encoding: string; content: string }>(await api('app/Dockerfile'));
  t.is(r.type, 'file');
  t.is(r.encoding, 'utf8');
  t.is(r.content, 'FROM busybox\nCMD ["echo", "hi ü"]\n');

  const bin = Buffer.from([0, 1, 2, 255, 254, 10, 0]);
  t.is((await api('app/blob.bin', { method: 'PUT', json: { content: bin.toString('base64'), encoding: 'base64' } })).status, 200);
  const rb = await json<{ encoding: string; content: string; size: number }>(await api('app/blob.bin'));
  t.is(rb.encoding, 'base64');
  t.deepEqual(Buffer.from(rb.content, 'base64'), bin);

  t.is((await api('app/sub/deeper', { method: 'POST', json: { type: 'dir' } })).status, 201);
  const dir = await json<{ type: string; path: string; entries: { name: string; type: string; size: number }[] }>(await api('app'));
  t.is(dir.type, 'dir');
  t.deepEqual(
    dir.entries.map((e) => [e.name, e.type]),
    [
      ['sub', 'dir'],
      ['blob.bin', 'file'],
      ['Dockerfile', 'file'],
    ],
  );

  // The boundary: traversal, absolute paths elsewhere, and symlinks that point out are refused.
  for (const bad of ['../../etc/passwd', '/etc/passwd', 'app/../../learner2']) {
    const res = await api(bad);
    t.is(res.status, 400, bad);
    t.is((await json<{ error: { code: string } }>(res)).error.code, 'PATH_OUTSIDE_WORKSPACE');
  }
  t.is((await exec(s, c, 'ln -s /etc out && ln -s /etc/hostname app/host')).exitCode, 0);
  t.is((await api('out/passwd')).status, 400);
  t.is((await api('app/host')).status, 400);
  t.is((await api('out/evil', { method: 'PUT', json: { content: 'x' } })).status, 400, 'no writing through a symlink out');
  t.is((await api('out', { method: 'DELETE' })).status, 204, 'the symlink itself may go');
  t.is((await exec(s, c, 'test -e /etc/passwd && test ! -L out')).exitCode, 0, 'its target is untouched');

  // Limits and mistakes: clear codes, nothing lost.
  const big = await api('big.txt', { method: 'PUT', json: { content: 'x'.repeat(70 * 1024) } });
  t.is(big.status, 413);
  t.is((await json<{ error: { code: string } }>(big)).error.code, 'FILE_TOO_LARGE');
  t.is((await api('nope.txt')).status, 404);
  t.is((await api('app', { method: 'PUT', json: { content: 'x' } })).status, 409, 'a folder is not overwritten by a file');
  t.is((await api('', { method: 'DELETE' })).status, 400, 'the workspace itself cannot be deleted');
  t.is((await api('app/x', { method: 'PUT', json: { content: 1 } })).status, 400);
  t.is((await s.api(`/api/sessions/${c.id}/files?path=app`)).status, 401, 'no token, no files');

  t.is((await api('app', { method: 'DELETE' })).status, 204);
  t.is((await api('app')).status, 404);
});

test.serial('nodes are added and removed at run time and reach each other by name', async (t) => {
  const add = await s.api(`/api/sessions/${c.id}/nodes`, { method: 'POST', token: c.token });
  t.is(add.status, 201, await add.clone().text());
  t.deepEqual(await json(add), { name: 'node2' });
  const view = await json<{ nodes: { name: string }[] }>(await s.api(`/api/sessions/${c.id}`, { token: c.token }));
  t.deepEqual(
    view.nodes.map((n) => n.name),
    ['node1', 'node2'],
  );

  const host = await exec(s, c, 'hostname', { node: 'node2' });
  t.is(host.stdout.trim(), 'node2');
  // The remote daemon lesson: node1's client drives node2's engine by name.
  const made = await exec(
    s,
    c,
    'docker -H tcp://node2:2375 run -d --name on-node2 busybox sleep 300 >/dev/null && docker -H tcp://node2:2375 ps --format "{{.Names}}"',
    { timeoutMs: 60_000 },
  );
  t.is(made.exitCode, 0, made.stderr);
  t.is(made.stdout.trim(), 'on-node2');
  t.is((await exec(s, c, 'docker ps --format "{{.Names}}"', { node: 'node2' })).stdout.trim(), 'on-node2');

  t.is((await s.api(`/api/sessions/${c.id}/nodes/node2`, { method: 'DELETE', token: c.token })).status, 204);
  const gone = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd: 'true', node: 'node2' } });
  t.is(gone.status, 404);
  t.is((await s.api(`/api/sessions/${c.id}/nodes/node1`, { method: 'DELETE', token: c.token })).status, 409, 'the last node stays');
});

// The preview proxy against malformed answers from an app (tenant isolation: one learner's app must never
// end the server for everyone). The proxy, its HTTP server and the upstream are real sockets on loopback;
// only the node's address and its connection (openPort, to loopback) come from a stand-in provider, because
// what is tested is the relay of bytes.
import test, { type ExecutionContext } from 'ava';
import { createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken } from '../../sandbox-server/auth.ts';
import { connectPort } from '../../sandbox-server/engine/connect-port.ts';
import type { SandboxProvider } from '../../sandbox-server/engine/provider.ts';
import { PreviewKeys } from '../../sandbox-server/preview/links.ts';
import { createPreview } from '../../sandbox-server/preview/proxy.ts';
import { SandboxManager } from '../../sandbox-server/sandboxes/manager.ts';
import { Store } from '../../sandbox-server/store.ts';

const SESSION = 'fuzz0001';
const TOKEN = 'f'.repeat(43);

/** An upstream that answers each connection with the next scripted bytes, then closes. */
function scriptedUpstream(): Promise<{ server: Server; port: number; next: (bytes: Buffer | string) => void }> {
  const queue: (Buffer | string)[] = [];
  const server = createTcpServer((sock: Socket) => {
    sock.on('error', () => {});
    sock.once('data', () => {
      const bytes = queue.shift() ?? '';
      sock.end(bytes);
    });
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      ok({ server, port: typeof a === 'object' && a ? a.port : 0, next: (b) => queue.push(b) });
    }),
  );
}

async function proxyServer(dir: string) {
  const store = new Store(join(dir, 'berth.db'));
  const t = Date.now();
  store.insertSession({
    id: SESSION,
    tokenHash: hashToken(TOKEN),
    lesson: null,
    nodes: ['node1'],
    createdAt: t,
    expiresAt: t + 3_600_000,
    lastActivityAt: t,
    client: '',
  });
  const provider = {
    nodeAddress: async () => '127.0.0.1',
    openPort: (_s: string, _n: string, port: number) => connectPort('127.0.0.1', port),
  } as unknown as SandboxProvider;
  const manager = new SandboxManager({
    provider,
    store,
    limits: { memoryBytes: 0, nanoCpus: 0, pids: 0, diskBytes: 0 },
    poolSize: 0,
    maxSandboxes: 1,
    maxNodes: 1,
    lifetimeMs: 3_600_000,
    extendMs: 0,
    idleMs: 3_600_000,
    execMaxOutput: 1024,
    seedFiles: () => [],
  });
  const warnings: object[] = [];
  const preview = createPreview({
    manager,
    provider,
    keys: new PreviewKeys(Buffer.alloc(32, 1)),
    domain: null,
    secureCookies: false,
    log: { warn: (o) => warnings.push(o) },
  });
  const server = createHttpServer((req, res) => {
    const target = preview.match(req);
    if (target) void preview.http(req, res, target);
    else {
      res.writeHead(200);
      res.end('berth');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const a = server.address();
  return { server, store, warnings, port: typeof a === 'object' && a ? a.port : 0 };
}

function get(port: number, path: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${TOKEN}` }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => {
        body += b;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    // A reset mid-body is an acceptable end for a bad answer: what matters is the server lives on.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? ok({ status: -1, headers: {}, body: '' }) : fail(err)));
    req.end();
  });
}

/** Small deterministic generator, so a failing case can be replayed. */
function prng(seed: number) {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** An upstream and a proxy in front of it, both gone when the test ends. */
async function setup(t: ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-fuzz-'));
  const up = await scriptedUpstream();
  const px = await proxyServer(dir);
  t.teardown(() => {
    up.server.close();
    px.server.close();
    px.store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { up, px, path: `/p/${SESSION}/node1/${up.port}/` };
}

const MALFORMED: [string, string | Buffer][] = [
  ['status 099', 'HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n'],
  ['status 000', 'HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n'],
  ['status 600', 'HTTP/1.1 600 Big\r\nContent-Length: 0\r\n\r\n'],
  ['status 999', 'HTTP/1.1 999 Bigger\r\nContent-Length: 0\r\n\r\n'],
  ['status 199 final', 'HTTP/1.1 199 Info\r\nContent-Length: 0\r\n\r\n'],
  ['100 then 099', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n'],
  ['101 on a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nhello'],
  ['header name with a space', 'HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n'],
  ['header value with a control byte', 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n'],
  ['header value with a bare CR', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n'],
  ['oversized head', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`],
  ['body shorter than Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\nhello'],
  ['broken chunked body', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n'],
  ['not HTTP at all', 'SSH-2.0-OpenSSH_9.2\r\n'],
  ['closes without a byte', ''],
  ['binary garbage', Buffer.from([0, 255, 13, 10, 13, 10, 1, 2, 3])],
];

test('no answer from an app ends the server; a bad answer costs that request only (502)', async (t) => {
  const { up, px, path } = await setup(t);

  for (const [name, bytes] of MALFORMED) {
    up.next(bytes);
    const r = await get(px.port, path);
    t.true(r.status === 502 || r.status === -1 || (r.status >= 200 && r.status < 600), `${name}: answered ${r.status}`);
    if (/^status|^100 then|^101|^header|^oversized|^not HTTP|^binary/.test(name)) {
      t.is(r.status, 502, name);
      t.regex(r.body, /"code":"PREVIEW_(BAD_RESPONSE|UNREACHABLE)"/, name);
    }
    up.next('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    t.is((await get(px.port, path)).body, 'ok', `still serving after: ${name}`);
  }

  // Random heads: a real status line start, then bytes from a fixed seed (bounded: 200 cases).
  const rand = prng(0xbe27);
  for (let i = 0; i < 200; i++) {
    const len = Math.floor(rand() * 200);
    const junk = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
    const status = String(Math.floor(rand() * 1000)).padStart(3, '0');
    up.next(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} X\r\n`), junk, Buffer.from('\r\n\r\n')]));
    const r = await get(px.port, path);
    t.true(r.status === -1 || (r.status >= 200 && r.status < 600), `case ${i} (status ${status}): answered ${r.status}`);
  }
  up.next('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  t.is((await get(px.port, path)).body, 'ok', 'still serving after the random cases');
  t.true(px.warnings.length > 0, 'bad answers are logged for the operator');
});

test('a path-scheme preview runs in an opaque origin and cannot set cookies on Berth', async (t) => {
  const { up, px, path } = await setup(t);
  const cookies = Array.from({ length: 3 }, (_, i) => `Set-Cookie: bomb${i}=${'x'.repeat(4000)}; Path=/`).join('\r\n');
  for (const shared of [false, true]) {
    px.store.setShared(SESSION, 'node1', up.port, shared);
    up.next(`HTTP/1.1 200 OK\r\n${cookies}\r\nContent-Security-Policy: default-src *\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\nhtml`);
    const r = await get(px.port, path);
    t.is(r.status, 200);
    t.is(r.headers['set-cookie'], undefined, 'Set-Cookie dropped');
    t.regex(String(r.headers['content-security-policy']), /^sandbox /, 'the app cannot loosen the sandbox');
    t.notRegex(String(r.headers['content-security-policy']), /allow-same-origin/);
    t.is(r.headers['referrer-policy'], 'no-referrer');
  }
});

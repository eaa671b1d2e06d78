// The server's upgrade wiring (sandbox-server/upgrades.ts, terminal/endpoint.ts) without a server: requests and
// sockets are in-memory streams, so refusals are read back byte for byte. Handshakes that succeed, and what a
// terminal does after, are the integration layer's (tests/integration/terminal.test.ts, workshops.test.ts).
import test from 'ava';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { terminalEndpoint } from '../../sandbox-server/terminal/endpoint.ts';
import { UpgradeRouter } from '../../sandbox-server/upgrades.ts';

const request = (url: string, headers: Record<string, string> = {}) => ({ url, headers, method: 'GET' }) as unknown as IncomingMessage;

/** A socket that records what is written to it. */
function socket() {
  const s = new PassThrough();
  let written = '';
  s.on('data', (b: Buffer) => {
    written += b;
  });
  return { s, text: () => written };
}

function logger() {
  const lines: { level: string; msg: string; o: object }[] = [];
  return {
    lines,
    warn: (o: object, msg: string) => lines.push({ level: 'warn', msg, o }),
    error: (o: object, msg: string) => lines.push({ level: 'error', msg, o }),
  };
}

test('an upgrade no route takes is a JSON 404; the first route that matches serves, with what it matched', async (t) => {
  const log = logger();
  const router = new UpgradeRouter(log);
  const served: string[] = [];
  router.add({
    match: (_req, url) => (url.pathname.startsWith('/a/') ? url.pathname.slice(3) : null),
    handle: (_r, _s, _h, m) => {
      served.push(`a:${m}`);
    },
  });
  router.add({
    match: (_req, url) => (url.pathname.startsWith('/a/x') ? 'never' : null),
    handle: () => {
      served.push('second');
    },
  });
  router.handle(request('/a/x?y=1'), socket().s, Buffer.alloc(0));
  t.deepEqual(served, ['a:x']);

  const none = socket();
  router.handle(request('/nothing'), none.s, Buffer.alloc(0));
  await new Promise((r) => setImmediate(r));
  const [head, body] = none.text().split('\r\n\r\n');
  t.regex(head, /^HTTP\/1\.1 404 Not Found\r\n/);
  t.regex(head, /Content-Type: application\/json/);
  t.deepEqual(JSON.parse(body), { error: { code: 'NOT_FOUND', message: 'No WebSocket endpoint here.' } });
});

test('a route that throws or rejects costs its socket and is logged, never the process', async (t) => {
  const log = logger();
  const router = new UpgradeRouter(log);
  router.add({
    match: (_req, url) => (url.pathname === '/sync' ? true : null),
    handle: () => {
      throw new Error('sync');
    },
  });
  router.add({
    match: (_req, url) => (url.pathname === '/async' ? true : null),
    handle: async () => {
      throw new Error('async');
    },
  });
  const a = socket();
  const b = socket();
  router.handle(request('/sync'), a.s, Buffer.alloc(0));
  router.handle(request('/async'), b.s, Buffer.alloc(0));
  await new Promise((r) => setImmediate(r));
  t.true(a.s.destroyed);
  t.true(b.s.destroyed);
  t.deepEqual(
    log.lines.map((l) => `${l.level} ${l.msg} ${(l.o as { err: Error }).err.message}`),
    ['error upgrade failed sync', 'error upgrade failed async'],
  );
});

test('terminal endpoints: the path names the ids; a foreign Origin is refused (403) before any handshake', async (t) => {
  const log = logger();
  const opened: string[][] = [];
  const route = terminalEndpoint({
    path: /^\/api\/things\/([a-z0-9]{4,40})\/terminal$/,
    name: 'thing terminal',
    allowedOrigins: new Set(['http://localhost:3000']),
    log,
    open: async ({ ids }) => {
      opened.push(ids);
    },
  });
  const url = (p: string) => new URL(p, 'http://berth.invalid');
  t.deepEqual(route.match(request('/api/things/abcd1234/terminal'), url('/api/things/abcd1234/terminal?tab=2')), ['abcd1234']);
  t.is(route.match(request('/api/things/AB/terminal'), url('/api/things/AB/terminal')), null);

  const foreign = socket();
  const req = request('/api/things/abcd1234/terminal', { origin: 'https://evil.example' });
  await route.handle(req, foreign.s, Buffer.alloc(0), ['abcd1234']);
  await new Promise((r) => setImmediate(r));
  const [head, body] = foreign.text().split('\r\n\r\n');
  t.regex(head, /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.is(JSON.parse(body).error.code, 'FORBIDDEN_ORIGIN');
  t.deepEqual(
    log.lines.map((l) => [l.level, l.msg, l.o]),
    [['warn', 'thing terminal upgrade from a foreign origin refused', { origin: 'https://evil.example' }]],
  );
  t.deepEqual(opened, [], 'no shell is opened for a refused origin');
});

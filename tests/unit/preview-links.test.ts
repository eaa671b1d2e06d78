// Preview addresses, tickets and `docker ps` port parsing: pure logic.
import test from 'ava';
import { parsePublished } from '../../sandbox-server/engine/published.ts';
import { appCookies, parseTarget, PreviewKeys, ticketFrom, withoutTicket } from '../../sandbox-server/preview/links.ts';

test('path scheme: session, node, port and the rest of the path', (t) => {
  t.like(parseTarget('berth:3000', '/p/abcd1234/node2/8080/css/a.css?x=1', null), {
    sessionId: 'abcd1234',
    node: 'node2',
    port: 8080,
    scheme: 'path',
    rest: '/css/a.css?x=1',
    base: '/p/abcd1234/node2/8080/',
  });
  t.like(parseTarget('berth:3000', '/p/abcd1234/node1/80', null), { rest: '/' });
  t.is(parseTarget('berth:3000', '/p/abcd1234/node1/99999/', null), null);
  t.is(parseTarget('berth:3000', '/api/sessions/x', null), null);
  t.is(parseTarget('berth:3000', '/p/ABC/node1/80/', null), null);
});

test('host scheme only under the preview domain', (t) => {
  t.like(parseTarget('abcd1234-node1-8080.preview.localhost:3000', '/x?y', 'preview.localhost'), { scheme: 'host', port: 8080, rest: '/x?y', base: '/' });
  t.is(parseTarget('evil-node1-8080.other.localhost', '/', 'preview.localhost'), null);
  // A bad label under the preview domain is not Berth's site either.
  t.is(parseTarget('nonsense.preview.localhost', '/p/abcd1234/node1/80/', 'preview.localhost'), null);
});

test('tickets are bound to their session and port, expire, and open a preview once', (t) => {
  const keys = new PreviewKeys(Buffer.alloc(32, 7));
  const tk = keys.ticket('abcd1234', 'node1', 8080, 1_000_000);
  t.true(keys.ticketValid(tk, 'abcd1234', 'node1', 8080, 1_000_001));
  t.false(keys.ticketValid(tk, 'other123', 'node1', 8080, 1_000_001));
  t.false(keys.ticketValid(tk, 'abcd1234', 'node1', 8081, 1_000_001), 'another port');
  t.false(keys.ticketValid(tk, 'abcd1234', 'node2', 8080, 1_000_001), 'another node');
  t.false(keys.ticketValid(tk, 'abcd1234', 'node1', 8080, 1_000_000 + 11 * 60_000));
  t.false(new PreviewKeys(Buffer.alloc(32, 8)).ticketValid(tk, 'abcd1234', 'node1', 8080, 1_000_001), 'another server key');
  t.false(keys.ticketValid(null, 'abcd1234', 'node1', 8080, 0));
  t.true(keys.spendTicket(tk, 'abcd1234', 'node1', 8080, 1_000_002));
  t.false(keys.spendTicket(tk, 'abcd1234', 'node1', 8080, 1_000_003), 'a spent ticket is refused');
  t.true(keys.cookieValid(`a=b; berth_preview=${keys.cookieValue('abcd1234', 'node1', 8080)}`, 'abcd1234', 'node1', 8080));
  t.false(keys.cookieValid(`berth_preview=${keys.cookieValue('abcd1234', 'node1', 8080)}`, 'abcd1234', 'node1', 9090), 'cookie of another port');
  t.false(keys.cookieValid(`berth_preview=${keys.cookieValue('other123', 'node1', 8080)}`, 'abcd1234', 'node1', 8080));
});

test('path keys open one port of one node of one session', (t) => {
  const keys = new PreviewKeys(Buffer.alloc(32, 7));
  const key = keys.pathKey('abcd1234', 'node1', 8080);
  t.regex(key, /^[A-Za-z0-9_-]{22}$/);
  t.true(keys.pathKeyValid(key, 'abcd1234', 'node1', 8080));
  t.false(keys.pathKeyValid(key, 'abcd1234', 'node1', 8081));
  t.false(keys.pathKeyValid(key, 'abcd1234', 'node2', 8080));
  t.false(keys.pathKeyValid(key, 'other123', 'node1', 8080));
  t.false(keys.pathKeyValid(undefined, 'abcd1234', 'node1', 8080));
  t.like(parseTarget('berth:3000', `/p/abcd1234.${key}/node1/8080/a.css`, null), {
    sessionId: 'abcd1234',
    key,
    base: `/p/abcd1234.${key}/node1/8080/`,
    rest: '/a.css',
  });
});

test("the ticket is removed from the URL, other parameters stay; Berth's cookie is not forwarded", (t) => {
  t.is(withoutTicket('/a?berth_ticket=x.y&q=1'), '/a?q=1');
  t.is(withoutTicket('/a?berth_ticket=x.y'), '/a');
  t.is(withoutTicket('/a'), '/a');
  t.is(ticketFrom('/a?q=1&berth_ticket=t.k'), 't.k');
  t.is(appCookies('berth_preview=s; session=app'), 'session=app');
  t.is(appCookies('berth_preview=s'), undefined);
});

test('published ports from docker ps: tcp, public, once per port', (t) => {
  const ps = [
    'a1\thttpd\tweb\t0.0.0.0:8080->80/tcp, [::]:8080->80/tcp',
    'b2\tredis\tcache\t6379/tcp',
    'c3\tnginx\tlocal\t127.0.0.1:9000->80/tcp',
    'd4\tnode\tapp,alias\t0.0.0.0:3000->3000/tcp, 0.0.0.0:5353->53/udp',
    '',
  ].join('\n');
  t.deepEqual(parsePublished(ps), [
    { port: 3000, container: 'app', image: 'node' },
    { port: 8080, container: 'web', image: 'httpd' },
  ]);
});

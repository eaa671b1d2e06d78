import test from 'ava';
import { answer, buildReply, parseQuery } from '../../sandbox-server/engine/dns.ts';

// A query as glibc sends it: id, RD set, one question, an EDNS OPT record in the additional section.
function query(name: string, qtype = 1, id = 0x1234) {
  const labels = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
  const tail = Buffer.from([qtype >> 8, qtype & 0xff, 0, 1]);
  const opt = Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, labels, tail, opt]);
}

test('parseQuery reads the question and refuses what is not a well-formed query', (t) => {
  const q = parseQuery(query('Deb.Debian.org', 28))!;
  t.is(q.name, 'deb.debian.org');
  t.is(q.qtype, 28);
  t.is(q.id, 0x1234);
  t.is(parseQuery(Buffer.alloc(5)), null);
  const reply = Buffer.from(query('a.b'));
  reply[2] |= 0x80;
  t.is(parseQuery(reply), null, 'a response is not a query');
  t.is(parseQuery(query('a.b').subarray(0, 16)), null, 'a truncated name');
  const bad = Buffer.from(query('abc'));
  bad[12] = 0xc0;
  t.is(parseQuery(bad), null, 'a compression pointer in the question');
});

test('buildReply: the id, the question, and A records with a pointer to the name', (t) => {
  const q = parseQuery(query('deb.debian.org'))!;
  const r = buildReply(q, 0, ['192.0.2.7', '192.0.2.8']);
  t.is(r.readUInt16BE(0), 0x1234);
  const flags = r.readUInt16BE(2);
  t.truthy(flags & 0x8000, 'QR');
  t.truthy(flags & 0x0100, 'RD copied');
  t.is(flags & 0xf, 0);
  t.is(r.readUInt16BE(6), 2);
  const first = 12 + q.question.length;
  t.is(r.readUInt16BE(first), 0xc00c);
  t.deepEqual([...r.subarray(first + 12, first + 16)], [192, 0, 2, 7]);
  t.is(r.length, first + 32);
  t.is(buildReply(q, 3).readUInt16BE(2) & 0xf, 3);
});

test('answer: allowed names resolve, their other types are empty, everything else is NXDOMAIN without a lookup', async (t) => {
  const allowed = new Set(['deb.debian.org']);
  const asked: string[] = [];
  const resolve = async (n: string) => {
    asked.push(n);
    if (n === 'deb.debian.org') return ['192.0.2.7'];
    throw new Error('ENOTFOUND');
  };
  t.deepEqual(await answer(parseQuery(query('deb.debian.org'))!, allowed, resolve), { rcode: 0, addresses: ['192.0.2.7'], kind: 'allowed' });
  t.deepEqual(await answer(parseQuery(query('deb.debian.org', 28))!, allowed, resolve), { rcode: 0, addresses: [], kind: 'allowed' });
  t.deepEqual(await answer(parseQuery(query('docker.io'))!, allowed, resolve), { rcode: 3, addresses: [], kind: 'refused' });
  t.deepEqual(await answer(parseQuery(query('evil.deb.debian.org.attacker'))!, allowed, resolve), { rcode: 3, addresses: [], kind: 'refused' });
  t.deepEqual(asked, ['deb.debian.org'], 'names off the list are never looked up');
  t.deepEqual(
    await answer(parseQuery(query('deb.debian.org'))!, allowed, async () => {
      throw new Error('down');
    }),
    { rcode: 2, addresses: [], kind: 'failed' },
  );
  const notify = Buffer.from(query('deb.debian.org'));
  notify[2] = 0x20; // opcode 4
  t.is((await answer(parseQuery(notify)!, allowed, resolve)).rcode, 4);
});

// Small probes a test runs inside a network namespace (`ip netns exec <ns> node tests/helpers/netns-probe.ts …`),
// each printing one JSON line:
//   dns <server> <name>       one A query to <server>:53: {rcode, addresses} or {error}
//   http <url>                GET: {status, sha256, token} or {error}
//   serve <port> <token>      an HTTP server on 127.0.0.1:<port> (a registry stand-in: /v2/ answers 200, /blob
//                             1 MiB of known bytes, each reply carries x-token), printing {listening} once up.
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';

/** The 1 MiB /blob serves: known bytes, so a relay that loses or reorders any shows in the hash. */
export const blob = () => Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31 + (i >> 11)) & 0xff));

function query(name: string, id: number) {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** rcode and A addresses of a reply to a one-question query (answers use a name pointer, as engine/dns.ts writes). */
function parseReply(buf: Buffer) {
  const rcode = buf.readUInt16BE(2) & 0xf;
  const count = buf.readUInt16BE(6);
  let i = 12;
  while (buf[i] !== 0) i += buf[i] + 1;
  i += 5;
  const addresses: string[] = [];
  for (let k = 0; k < count; k++) {
    i += buf[i] >= 0xc0 ? 2 : 0;
    const type = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 8);
    if (type === 1 && len === 4) addresses.push([...buf.subarray(i + 10, i + 14)].join('.'));
    i += 10 + len;
  }
  return { rcode, addresses };
}

const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const [cmd, a, b] = process.argv.slice(2);

if (!import.meta.main) {
  /* imported for blob() */
} else if (cmd === 'dns') {
  const s = createSocket('udp4');
  const id = Math.floor(Math.random() * 0xffff);
  const timer = setTimeout(() => {
    out({ error: 'timeout' });
    process.exit(0);
  }, 2000);
  s.on('message', (msg) => {
    if (msg.readUInt16BE(0) !== id) return;
    clearTimeout(timer);
    out(parseReply(msg));
    process.exit(0);
  });
  // A closed port answers with ICMP port unreachable: ECONNREFUSED on a connected socket.
  s.on('error', (err) => {
    clearTimeout(timer);
    out({ error: (err as NodeJS.ErrnoException).code ?? err.message });
    process.exit(0);
  });
  s.connect(53, a, () => s.send(query(b, id)));
} else if (cmd === 'http') {
  try {
    const res = await fetch(a, { signal: AbortSignal.timeout(10_000) });
    const body = Buffer.from(await res.arrayBuffer());
    out({ status: res.status, sha256: createHash('sha256').update(body).digest('hex'), token: res.headers.get('x-token') });
  } catch (err) {
    out({ error: String((err as Error).cause ?? err) });
  }
} else if (cmd === 'serve') {
  const data = blob();
  createServer((req, res) => {
    res.setHeader('x-token', b);
    if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else if (req.url === '/blob') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(data);
    else res.writeHead(404).end();
  }).listen(Number(a), '127.0.0.1', () => out({ listening: Number(a) }));
} else {
  console.error('usage: netns-probe.ts dns <server> <name> | http <url> | serve <port> <token>');
  process.exit(2);
}

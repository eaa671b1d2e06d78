// A small DNS responder for sandboxes, listening on each sandbox bridge's gateway address.
//
// Why: a sandbox's resolver would otherwise forward every name to the host's resolvers, which the egress
// firewall refuses, and Docker's embedded DNS then waits out its timeout: `docker pull nginx` spent 10 s on a
// lookup of `docker.io` before it even asked the mirror, and names on the allow-list (the Debian mirror) did
// not resolve at all, so apt could not work. Here a name on the allow-list resolves the way it does on the
// host (its /etc/hosts and resolvers), and every other name gets NXDOMAIN at once without leaving the host:
// nothing to wait for, and no DNS tunnel out of a sandbox.
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE = { ok: 0, formErr: 1, servFail: 2, nxDomain: 3, notImp: 4 } as const;
const TTL_S = 60;

export type Query = { id: number; flags: number; name: string; qtype: number; qclass: number; question: Buffer };

/** The first question of a DNS query, or null when the packet is not a well-formed query. */
export function parseQuery(buf: Buffer): Query | null {
  if (buf.length < 12) return null;
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000 || buf.readUInt16BE(4) < 1) return null; // a response, or no question
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    if (i >= buf.length) return null;
    const len = buf[i];
    if (len === 0) {
      i += 1;
      break;
    }
    if (len > 63 || i + 1 + len > buf.length) return null; // compression pointers never appear in a question
    labels.push(buf.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  if (i + 4 > buf.length) return null;
  return {
    id: buf.readUInt16BE(0),
    flags,
    name: labels.join('.').toLowerCase(),
    qtype: buf.readUInt16BE(i),
    qclass: buf.readUInt16BE(i + 2),
    question: buf.subarray(12, i + 4),
  };
}

/** A reply to `q` with the given code and IPv4 answers. */
export function buildReply(q: Query, rcode: number, addresses: string[] = []): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, RA; no authority.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((ip) => {
    const a = Buffer.alloc(16);
    a.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    a.writeUInt16BE(TYPE_A, 2);
    a.writeUInt16BE(CLASS_IN, 4);
    a.writeUInt32BE(TTL_S, 6);
    a.writeUInt16BE(4, 10);
    ip.split('.').forEach((o, k) => {
      a.writeUInt8(Number(o), 12 + k);
    });
    return a;
  });
  return Buffer.concat([header, q.question, ...answers]);
}

export type DnsOptions = {
  /** Host names sandboxes may resolve (exact, case-insensitive). */
  allowed: string[];
  /** IPv4 addresses for a name; the host's resolver by default. */
  resolve?: (name: string) => Promise<string[]>;
  /** Called with each name's addresses, so the firewall can let traffic to them through. */
  onAddresses?: (name: string, addresses: string[]) => void;
  onQuery?: (answer: 'allowed' | 'refused' | 'failed' | 'malformed') => void;
  log?: { warn(o: object, m: string): void };
};

const hostLookup = async (name: string) => (await lookup(name, { all: true, family: 4 })).map((a) => a.address);

/** Answers one query: A records for allowed names, no records for their other types, NXDOMAIN for the rest. */
export async function answer(
  q: Query,
  allowed: Set<string>,
  resolve: (n: string) => Promise<string[]>,
): Promise<{ rcode: number; addresses: string[]; kind: 'allowed' | 'refused' | 'failed' }> {
  if ((q.flags >> 11) & 0xf) return { rcode: RCODE.notImp, addresses: [], kind: 'refused' }; // opcode other than QUERY
  if (!allowed.has(q.name) || q.qclass !== CLASS_IN) return { rcode: RCODE.nxDomain, addresses: [], kind: 'refused' };
  if (q.qtype !== TYPE_A) return { rcode: RCODE.ok, addresses: [], kind: 'allowed' }; // sandboxes have no IPv6 egress
  try {
    return { rcode: RCODE.ok, addresses: await resolve(q.name), kind: 'allowed' };
  } catch {
    return { rcode: RCODE.servFail, addresses: [], kind: 'failed' };
  }
}

export class SandboxDns {
  private sockets = new Map<string, Socket>();
  private allowed: Set<string>;
  private resolve: (name: string) => Promise<string[]>;
  private cache = new Map<string, { at: number; addresses: Promise<string[]> }>();
  private opts: DnsOptions;

  constructor(opts: DnsOptions) {
    this.opts = opts;
    this.allowed = new Set(opts.allowed.map((n) => n.toLowerCase().replace(/\.$/, '')));
    this.resolve = opts.resolve ?? hostLookup;
  }

  /** Resolves through a short cache: a class running `apt-get update` at once asks the host once. */
  private cached = (name: string) => {
    const hit = this.cache.get(name);
    if (hit && Date.now() - hit.at < TTL_S * 1000) return hit.addresses;
    const addresses = this.resolve(name).then((a) => {
      this.opts.onAddresses?.(name, a);
      return a;
    });
    addresses.catch(() => this.cache.delete(name));
    this.cache.set(name, { at: Date.now(), addresses });
    return addresses;
  };

  /** Starts answering on `address`:53. False when the port cannot be bound (the sandbox then keeps Docker's DNS). */
  async serve(address: string): Promise<boolean> {
    if (this.sockets.has(address)) return true;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (msg, from) => void this.reply(socket, msg, from.address, from.port));
    socket.on('error', (err) => this.opts.log?.warn({ err, address }, 'sandbox DNS socket error'));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address, port: 53, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.opts.log?.warn({ err, address }, 'sandbox DNS could not listen: this sandbox uses the host resolvers');
      socket.close();
      return false;
    }
    this.sockets.set(address, socket);
    return true;
  }

  stop(address: string) {
    this.sockets.get(address)?.close();
    this.sockets.delete(address);
  }

  stopAll() {
    for (const a of [...this.sockets.keys()]) this.stop(a);
  }

  private async reply(socket: Socket, msg: Buffer, host: string, port: number) {
    const q = parseQuery(msg);
    if (!q) {
      this.opts.onQuery?.('malformed');
      return;
    }
    const a = await answer(q, this.allowed, this.cached);
    this.opts.onQuery?.(a.kind);
    // The sandbox may have gone while the name was looked up: its socket is closed, and send would throw.
    try {
      socket.send(buildReply(q, a.rcode, a.addresses), port, host);
    } catch {
      /* closed meanwhile */
    }
  }
}

// dtach's client protocol, spoken by the server itself on a socket connected to a tab's dtach master
// (terminal/attach.ts): no `dtach -a` client process in the node, no exec stream in between.
// From dtach.h (crigler/dtach, 0.9): the client sends fixed packets of 10 bytes, { type, len, u[8] }, where u
// holds up to 8 bytes of input or a struct winsize (four native-endian unsigned shorts: rows, cols, xpixel,
// ypixel); the master sends the pty's output back as a plain byte stream, to attached clients only.
// The master reads exactly one packet per read() and drops a client whose read comes up short, so packets
// must never be split across writes (DtachWriter).
import type { Socket } from 'node:net';
import { endianness } from 'node:os';

export const MSG = { PUSH: 0, ATTACH: 1, DETACH: 2, WINCH: 3, REDRAW: 4 } as const;
export const REDRAW = { UNSPEC: 0, NONE: 1, CTRL_L: 2, WINCH: 3 } as const;
export const PACKET = 10;
const PAYLOAD = 8;

type Size = { cols: number; rows: number };

// struct winsize is in the host's byte order: the master is on the same machine (another container, same kernel).
const le = endianness() === 'LE';
const u16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));

function packet(type: number, len = 0): Buffer {
  const b = Buffer.alloc(PACKET);
  b[0] = type;
  b[1] = len;
  return b;
}

function withSize(type: number, len: number, { cols, rows }: Size): Buffer {
  const b = packet(type, len);
  u16(b, rows, 2);
  u16(b, cols, 4);
  return b;
}

/** Keystrokes as PUSH packets, 8 bytes each (the last one shorter). */
export function push(data: Buffer): Buffer {
  const n = Math.ceil(data.length / PAYLOAD);
  const out = Buffer.alloc(n * PACKET);
  for (let i = 0; i < n; i++) {
    const part = data.subarray(i * PAYLOAD, (i + 1) * PAYLOAD);
    out[i * PACKET] = MSG.PUSH;
    out[i * PACKET + 1] = part.length;
    part.copy(out, i * PACKET + 2);
  }
  return out;
}

/** A new size for the shell's pty, with no redraw (as dtach -a sends on SIGWINCH). */
export const winch = (size: Size) => withSize(MSG.WINCH, 0, size);

/** Ask the master to redraw: sets the pty's size, then (winch) signals SIGWINCH or (ctrl_l) types ^L in raw mode. */
export const redraw = (method: number, size: Size) => withSize(MSG.REDRAW, method, size);

/**
 * What an attaching client sends first: ATTACH (from then on the master sends it the output) and, unless
 * the method is none (a watcher, which must not change the learner's size), a redraw at the client's size
 * so the shell repaints what a new tab or a reconnect would otherwise not see.
 */
export function attach(method: number, size: Size): Buffer {
  const a = packet(MSG.ATTACH);
  return method === REDRAW.NONE ? a : Buffer.concat([a, redraw(method, size)]);
}

/** Decodes a run of packets (tests, and a check that what is sent is what dtach reads). */
export function decode(buf: Buffer) {
  const out: { type: number; len: number; data: Buffer; rows: number; cols: number }[] = [];
  for (let at = 0; at + PACKET <= buf.length; at += PACKET) {
    const p = buf.subarray(at, at + PACKET);
    const rd = (o: number) => (le ? p.readUInt16LE(o) : p.readUInt16BE(o));
    out.push({ type: p[0], len: p[1], data: Buffer.from(p.subarray(2, 2 + Math.min(p[1], PAYLOAD))), rows: rd(2), cols: rd(4) });
  }
  return out;
}

/** Largest single write: whole packets, small enough that the kernel queues it as one unit (never half of it). */
export const MAX_WRITE = 400 * PACKET;

/**
 * Writes packets to the master so that none is ever split: one write in flight at a time, each a whole
 * number of packets and at most MAX_WRITE bytes. (Node would otherwise hand queued writes to one writev,
 * which the kernel may accept in part at any byte once the socket's buffer is full, e.g. under a big paste.)
 */
export class DtachWriter {
  socket: Socket;
  queue: Buffer[] = [];
  busy = false;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  write(packets: Buffer) {
    for (let at = 0; at < packets.length; at += MAX_WRITE) this.queue.push(packets.subarray(at, at + MAX_WRITE));
    this.next();
  }

  next() {
    if (this.busy || this.socket.destroyed) return;
    const b = this.queue.shift();
    if (!b) return;
    this.busy = true;
    this.socket.write(b, () => {
      this.busy = false;
      this.next();
    });
  }
}

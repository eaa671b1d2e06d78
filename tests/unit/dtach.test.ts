// dtach's client packets (sandbox-server/terminal/dtach.ts), byte for byte as dtach.h lays them out, and the
// writer that never lets a packet be split (the master drops a client whose read comes up short).
import test from 'ava';
import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import { attach, decode, DtachWriter, MAX_WRITE, MSG, PACKET, push, REDRAW, redraw, winch } from '../../sandbox-server/terminal/dtach.ts';

const u16 = (hi: number, lo: number) => (endianness() === 'LE' ? [lo, hi] : [hi, lo]);

test('a keystroke is one PUSH packet: type, length, the byte, zero padding to 10 bytes', (t) => {
  t.deepEqual([...push(Buffer.from('a'))], [MSG.PUSH, 1, 0x61, 0, 0, 0, 0, 0, 0, 0]);
});

test('input longer than 8 bytes is cut into packets of 8, the last one shorter', (t) => {
  const text = 'echo hello world\r'; // 17 bytes: 8 + 8 + 1
  const b = push(Buffer.from(text));
  t.is(b.length, 3 * PACKET);
  const p = decode(b);
  t.deepEqual(
    p.map((x) => [x.type, x.len]),
    [
      [MSG.PUSH, 8],
      [MSG.PUSH, 8],
      [MSG.PUSH, 1],
    ],
  );
  t.is(Buffer.concat(p.map((x) => x.data)).toString(), text);
  t.is(push(Buffer.alloc(16, 0x41)).length, 2 * PACKET, 'an exact multiple of 8 adds no empty packet');
  t.is(push(Buffer.alloc(0)).length, 0);
});

test('WINCH and REDRAW carry a struct winsize: rows, then columns, native-endian shorts', (t) => {
  t.deepEqual([...winch({ cols: 300, rows: 40 })], [MSG.WINCH, 0, ...u16(0, 40), ...u16(1, 44), 0, 0, 0, 0]);
  const r = decode(redraw(REDRAW.CTRL_L, { cols: 80, rows: 24 }))[0];
  t.deepEqual({ type: r.type, len: r.len, cols: r.cols, rows: r.rows }, { type: MSG.REDRAW, len: REDRAW.CTRL_L, cols: 80, rows: 24 });
});

test('attaching sends ATTACH then a redraw at the size, and a watcher ATTACH alone (no size, no redraw)', (t) => {
  const learner = decode(attach(REDRAW.WINCH, { cols: 120, rows: 30 }));
  t.deepEqual(
    learner.map((p) => [p.type, p.len]),
    [
      [MSG.ATTACH, 0],
      [MSG.REDRAW, REDRAW.WINCH],
    ],
  );
  t.deepEqual({ cols: learner[1].cols, rows: learner[1].rows }, { cols: 120, rows: 30 });
  const watcher = decode(attach(REDRAW.NONE, { cols: 120, rows: 30 }));
  t.deepEqual(
    watcher.map((p) => p.type),
    [MSG.ATTACH],
  );
});

test('the writer keeps one write in flight, each whole packets and at most MAX_WRITE bytes, in order', async (t) => {
  const writes: Buffer[] = [];
  let inFlight = 0;
  let most = 0;
  const socket = {
    destroyed: false,
    write(b: Buffer, cb: () => void) {
      writes.push(Buffer.from(b));
      inFlight++;
      most = Math.max(most, inFlight);
      setImmediate(() => {
        inFlight--;
        cb();
      });
      return true;
    },
  } as unknown as Socket;
  const w = new DtachWriter(socket);
  const paste = Buffer.alloc(100_003);
  for (let i = 0; i < paste.length; i++) paste[i] = 32 + (i % 90);
  w.write(push(paste.subarray(0, 50_000)));
  w.write(winch({ cols: 100, rows: 30 }));
  w.write(push(paste.subarray(50_000)));
  while (w.busy || w.queue.length) await new Promise((r) => setImmediate(r));
  t.is(most, 1);
  t.true(writes.every((b) => b.length % PACKET === 0 && b.length <= MAX_WRITE && b.length > 0));
  const packets = decode(Buffer.concat(writes));
  t.is(Buffer.concat(packets.filter((p) => p.type === MSG.PUSH).map((p) => p.data)).toString('latin1'), paste.toString('latin1'));
  t.is(
    packets.findIndex((p) => p.type === MSG.WINCH),
    6250,
    'the resize lands between the two pastes',
  );
});

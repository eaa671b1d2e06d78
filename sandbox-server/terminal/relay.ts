// Relays one persistent shell between a WebSocket and a TTY exec, with flow control in both places
// a fast producer can pile up bytes: un-acked output at the browser and the socket's send buffer.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CLOSE, decodeClient, error, output, status } from './protocol.ts';

export const HIGH_WATER = 1024 * 1024; // pause the shell above this many un-acked bytes
export const LOW_WATER = 256 * 1024; // resume below this
export const SOCKET_HIGH = 4 * 1024 * 1024;

export type RelayOptions = {
  ws: WebSocket;
  /** The shell: its output from `stream`; keystrokes through `write` (default: written to the stream). */
  tty: { stream: Duplex; resize: (cols: number, rows: number) => Promise<void>; write?: (b: Buffer) => void };
  onInput: () => void;
  onBytes: (direction: 'in' | 'out', n: number) => void;
  onOutput: (chunk: Buffer) => void;
  /** Output to show first: the tab's recent screen from before a reconnect. */
  replay: Buffer;
  /** Frames the client sent before the shell was open. */
  early?: { data: Buffer; isBinary: boolean }[];
  /** A watcher (an instructor shadowing a learner): INPUT frames are dropped, not typed. */
  readOnly?: boolean;
  /** Bytes the attaching client itself prints first and that must not reach the screen (dtach's clear). */
  dropPrefix?: Buffer;
};

export function relay({ ws, tty, onInput, onBytes, onOutput, replay, early = [], readOnly = false, dropPrefix }: RelayOptions) {
  const { stream } = tty;
  const input =
    tty.write ??
    ((b: Buffer) => {
      stream.write(b);
    });
  let drop = dropPrefix;
  let unacked = 0;
  let paused = false;
  // Keystrokes that reach the exec before its process runs are lost, so they wait for the process's
  // first output or, when a reattached shell stays quiet, a short grace period.
  let pending: Buffer[] | null = [];
  const flush = () => {
    if (pending) {
      const held = pending;
      pending = null;
      for (const b of held) input(b);
    }
  };
  const grace = setTimeout(flush, 300);
  const write = (b: Buffer) => (pending ? pending.push(b) : input(b));
  const update = () => {
    const over = unacked > HIGH_WATER || ws.bufferedAmount > SOCKET_HIGH;
    const under = unacked < LOW_WATER && ws.bufferedAmount < SOCKET_HIGH / 4;
    if (!paused && over) {
      paused = true;
      stream.pause();
    } else if (paused && under) {
      paused = false;
      stream.resume();
    }
  };

  stream.on('data', (chunk: Buffer) => {
    if (pending) {
      clearTimeout(grace);
      setTimeout(flush, 30);
    }
    if (drop) {
      const d = drop;
      drop = undefined;
      if (chunk.subarray(0, d.length).equals(d)) chunk = chunk.subarray(d.length);
      if (!chunk.length) return;
    }
    unacked += chunk.length;
    onBytes('out', chunk.length);
    onOutput(chunk);
    // Bytes go out exactly as the TTY produced them; the send callback re-checks the socket's buffer.
    ws.send(output(chunk), { binary: true }, () => update());
    update();
  });
  stream.on('end', () => {
    if (ws.readyState === ws.OPEN) {
      ws.send(status({ state: 'exited' }));
      ws.close(CLOSE.NORMAL, 'shell exited');
    }
  });
  stream.on('error', () => {
    if (ws.readyState === ws.OPEN) ws.close(CLOSE.ENGINE, 'terminal stream failed');
  });

  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.send(error('PROTOCOL', 'frames must be binary'));
      return;
    }
    const f = decodeClient(data);
    if (f.op === 'input') {
      if (!readOnly) {
        write(f.data);
        onInput();
        onBytes('in', f.data.length);
      }
    } // the keystroke first
    else if (f.op === 'resize') void tty.resize(f.cols, f.rows);
    else if (f.op === 'ack') {
      unacked = Math.max(0, unacked - f.bytes);
      update();
    } else ws.send(error('PROTOCOL', f.reason));
  };
  ws.on('message', onMessage);
  for (const m of early) onMessage(m.data, m.isBinary);
  ws.on('close', () => {
    clearTimeout(grace);
    stream.destroy();
  });
  ws.send(status({ state: replay.length ? 'reconnected' : 'ready' }));
  if (replay.length) {
    unacked += replay.length;
    ws.send(output(replay));
  }
}

// A TCP connection made inside a node, for previews of nodes this server has no route to (an Incus cluster
// member's bridge exists on that member only): socat in the node connects to the port, and its stdin and
// stdout travel over an exec's websockets, which Incus forwards to whichever member holds the node.
//
// socat tells what it does on stderr (`-d -d`: notices): "starting data transfer loop" once connected, an
// "E connect(...): Connection refused" line and exit status 1 when nothing listens, and "socket 2 ... is at
// EOF" when the app closes its side. The command's stdout only ends when the command exits (incusd holds the
// pipe's other end until then), so socat must exit when the app is done: `-t` is long (a browser that ends
// its side still gets the app's whole answer), and the app's EOF ends socat's stdin from here, after which it
// exits at once. An app that closes its sending side and keeps reading is the one TCP behaviour this loses.
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { IncusClient } from './client.ts';
import { type ExecStream, pipeCommand } from './exec.ts';

/** The port's own failure, shaped like a socket's error (`code`), so callers treat a relayed connection as
 *  they treat net.connect; anything else relayPort throws is the engine's. */
export class PortError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
const socketError = (code: string, message: string) => new PortError(code, message);

/** What a socat error line means, as the socket error code net.connect would give. */
export function socatErrorCode(line: string): string {
  if (/Connection refused/i.test(line)) return 'ECONNREFUSED';
  if (/Connection reset/i.test(line)) return 'ECONNRESET';
  if (/timed out/i.test(line)) return 'ETIMEDOUT';
  if (/No route to host/i.test(line)) return 'EHOSTUNREACH';
  if (/Network is unreachable/i.test(line)) return 'ENETUNREACH';
  return 'ERELAY';
}

export const SOCAT_CONNECTED = / N starting data transfer loop /;
/** socat's second address (the TCP one) reached EOF: the app closed its side. */
export const SOCAT_TCP_EOF = / N socket 2 \(fd \d+\) is at EOF/;
const SOCAT_ERROR = / E (.*)$/;
/** The most of one stderr line kept while waiting for its end: the node is the learner's, and so is what it prints. */
const LINE_MAX = 4096;

/**
 * Connects to `host`:`port` from inside `instance` (as the learner); resolves once socat is connected, with the
 * connection as a stream. Rejects with a socket-style error (code ECONNREFUSED when nothing listens, ETIMEDOUT
 * after `timeoutMs`); an Incus failure to start the exec is thrown as it comes (the caller maps it).
 */
export async function relayPort(client: IncusClient, instance: string, host: string, port: number, timeoutMs = 10_000): Promise<Duplex> {
  // An exec whose command ends before it says anything (liblxc's transient attach failure, see runCommand)
  // never connected: started again, at most twice more.
  for (let attempt = 1; ; attempt++) {
    const { stream, stderr } = await pipeCommand(client, instance, ['socat', '-d', '-d', '-t', '86400', '-', `TCP:${host}:${port}`]);
    const outcome = await connected(stream, stderr, timeoutMs);
    if (outcome === 'connected') return stream;
    stream.destroy();
    if (outcome !== 'silent' || attempt >= 3) throw outcome === 'silent' ? socketError('ERELAY', 'the relay ended before connecting') : outcome;
  }
}

/** Follows socat's notices until it is connected, has failed, or ended without a word ('silent'). */
function connected(stream: ExecStream, stderr: WebSocket, timeoutMs: number): Promise<'connected' | 'silent' | Error> {
  return new Promise((resolve) => {
    let ready = false;
    let said = false;
    let partial = '';
    let last = '';
    const timer = setTimeout(() => settle(socketError('ETIMEDOUT', `no connection within ${timeoutMs} ms`)), timeoutMs);
    const settle = (v: 'connected' | 'silent' | Error) => {
      clearTimeout(timer);
      stderr.off('close', ended);
      stream.off('close', ended);
      if (v === 'connected') ready = true;
      resolve(v);
    };
    const ended = (): void => (ready ? undefined : settle(said ? socketError('ERELAY', `the relay ended before connecting: ${last.slice(0, 300)}`) : 'silent'));
    stderr.on('message', (chunk: Buffer, isBinary: boolean) => {
      if (!isBinary) return ended(); // the end of stderr: the command has exited
      said = true;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = (lines.pop() ?? '').slice(0, LINE_MAX);
      for (const line of lines) {
        if (line.trim()) last = line;
        if (!ready && SOCAT_CONNECTED.test(line)) settle('connected');
        else if (SOCAT_TCP_EOF.test(line)) stream.endStdin();
        else {
          const e = SOCAT_ERROR.exec(line);
          if (!e) continue;
          const err = socketError(socatErrorCode(e[1]), e[1]);
          // Before the connection: the connect's failure; after it: the connection's (a reset), as a socket reports it.
          if (ready) stream.destroy(err);
          else settle(err);
        }
      }
    });
    // Until connected the stream has no reader (so no 'end'): the command's end closes its stderr socket.
    stderr.once('close', ended);
    stream.once('close', ended);
    stream.on('error', () => {
      /* before it is handed over, a failed stream is reported by the outcome; after, by its reader */
    });
  });
}

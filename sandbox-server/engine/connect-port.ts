// A TCP connection to a node's address from the server's own network namespace (previews of a node whose
// bridge is routed here), resolved once connected, as SandboxProvider.openPort promises.
import { connect, type Socket } from 'node:net';

/** Resolves with the connected socket; rejects with the socket's error (ECONNREFUSED…) or ETIMEDOUT after `timeoutMs`. */
export function connectPort(host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.setTimeout(timeoutMs, () => s.destroy(Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    s.once('error', reject);
    s.once('connect', () => {
      s.setTimeout(0);
      s.off('error', reject);
      resolve(s);
    });
  });
}

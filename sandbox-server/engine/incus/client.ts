// The one place that talks to incusd: its REST API on the local unix socket or, for a remote server or
// cluster, over HTTPS with a client certificate (as the incus CLI does), background operations, the
// operations' websockets and the file API. Errors leave here as IncusError or a socket error; the
// provider maps them to Berth's codes (errors.ts).
import { X509Certificate } from 'node:crypto';
import { request, type IncomingMessage, type RequestOptions as HttpRequestOptions } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import WebSocket from 'ws';
import { IncusError, operationResult, parseEnvelope, parseOperation, type Envelope, type Operation } from './api.ts';

export const DEFAULT_SOCKET = '/var/lib/incus/unix.socket';

export type RequestOptions = { body?: unknown; raw?: Buffer; headers?: Record<string, string>; timeoutMs?: number };

/** A remote Incus: its https:// address, Berth's client certificate and key, and the server's certificate (PEM texts). */
export type IncusRemote = { url: string; clientCert: string; clientKey: string; serverCert: string };

/**
 * The server is known by its certificate alone, as `incus remote add` pins it: the pinned certificate is the only
 * trust anchor (a self-signed server or cluster certificate verifies against itself), and the peer must present
 * exactly that certificate (its SHA-256 fingerprint), whatever name or address it was reached by.
 */
export function pinnedTls(r: IncusRemote) {
  const pinned = new X509Certificate(r.serverCert).fingerprint256;
  return {
    cert: r.clientCert,
    key: r.clientKey,
    ca: r.serverCert,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, peer: PeerCertificate) =>
      peer.fingerprint256 === pinned
        ? undefined
        : Object.assign(new Error(`the Incus server's certificate (${peer.fingerprint256}) is not the pinned one (${pinned})`), {
            code: 'ERR_INCUS_CERT_MISMATCH',
          }),
  };
}

export class IncusClient {
  socketPath: string;
  /** The remote server's origin (https://host:port) or null for the local unix socket. */
  origin: string | null = null;
  agent: Agent | undefined;

  constructor({ socketPath = DEFAULT_SOCKET, remote }: { socketPath?: string; remote?: IncusRemote | null } = {}) {
    this.socketPath = socketPath;
    if (remote) {
      this.origin = new URL(remote.url).origin;
      // Kept-alive connections: each exec opens several websockets and requests, and a TLS handshake each time adds up.
      this.agent = new Agent({ keepAlive: true, ...pinnedTls(remote) });
    }
  }

  /** Whether incusd runs elsewhere: the host's own view (its cgroups, its bridges, its files) is not the nodes'. */
  get remote() {
    return this.origin !== null;
  }

  /** Closes the kept-alive connections (a remote client only). */
  close() {
    this.agent?.destroy();
  }

  private send(opts: HttpRequestOptions, onResponse: (res: IncomingMessage) => void) {
    if (!this.origin) return request({ ...opts, socketPath: this.socketPath }, onResponse);
    const u = new URL(this.origin);
    return httpsRequest({ ...opts, host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 443, agent: this.agent }, onResponse);
  }

  /** One HTTP exchange; resolves with the status, the reply's headers (an ETag, say) and the whole body. */
  http(
    method: string,
    path: string,
    { body, raw, headers = {}, timeoutMs = 60_000 }: RequestOptions = {},
  ): Promise<{ status: number; body: Buffer; headers: IncomingMessage['headers'] }> {
    const payload = raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    return new Promise((resolve, reject) => {
      const req = this.send(
        {
          method,
          path,
          headers: {
            ...(payload ? { 'content-length': String(payload.length) } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (b: Buffer) => chunks.push(b));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new IncusError(504, `${method} ${path}: no reply in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async call(method: string, path: string, opts: RequestOptions = {}): Promise<Envelope> {
    const res = await this.http(method, path, opts);
    return parseEnvelope(res.status, res.body.toString('utf8'));
  }

  /** A request whose reply is synchronous; returns its metadata. */
  async get<T = unknown>(path: string): Promise<T> {
    const e = await this.call('GET', path);
    if (e.type !== 'sync') throw new IncusError(502, `GET ${path} started an operation`);
    return e.metadata as T;
  }

  /** A request that may start a background operation: waits for it and returns its metadata. */
  async run(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    const e = await this.call(method, path, { body });
    if (e.type === 'sync') return (e.metadata ?? {}) as Record<string, unknown>;
    return operationResult(await this.wait(e.operation.id, timeoutMs));
  }

  /** Waits (server side) for an operation to finish; the operation as it ended. */
  async wait(id: string, timeoutMs: number): Promise<Operation> {
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const e = await this.call('GET', `/1.0/operations/${encodeURIComponent(id)}/wait?timeout=${secs}`, { timeoutMs: timeoutMs + 5000 });
    if (e.type !== 'sync') throw new IncusError(502, 'waiting on an operation started another');
    return parseOperation(e.metadata);
  }

  /** Opens one of an operation's websockets (exec's stdin/stdout/stderr/control); resolves once open. */
  websocket(operationId: string, secret: string): Promise<WebSocket> {
    const path = `/1.0/operations/${encodeURIComponent(operationId)}/websocket?secret=${encodeURIComponent(secret)}`;
    const ws = this.origin
      ? new WebSocket(`${this.origin.replace(/^https:/, 'wss:')}${path}`, { perMessageDeflate: false, agent: this.agent })
      : new WebSocket(`ws+unix://${this.socketPath}:${path}`, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.off('error', reject);
        resolve(ws);
      });
      ws.once('error', reject);
    });
  }

  /** Writes a file into an instance, running or stopped, with its owner and mode. */
  async writeFile(instance: string, path: string, content: string | Buffer, { uid = 0, gid = 0, mode = 0o644, type = 'file' } = {}) {
    const res = await this.http('POST', `/1.0/instances/${encodeURIComponent(instance)}/files?path=${encodeURIComponent(path)}`, {
      raw: Buffer.from(content),
      headers: {
        'content-type': 'application/octet-stream',
        'x-incus-uid': String(uid),
        'x-incus-gid': String(gid),
        'x-incus-mode': mode.toString(8).padStart(4, '0'),
        'x-incus-type': type,
        'x-incus-write': 'overwrite',
      },
    });
    parseEnvelope(res.status, res.body.toString('utf8'));
  }

  /** Creates a directory in an instance; one that exists already is left as it is. */
  mkdir(instance: string, path: string, mode = 0o755) {
    return this.writeFile(instance, path, '', { mode, type: 'directory' });
  }
}

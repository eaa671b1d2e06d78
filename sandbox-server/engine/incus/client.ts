// The one place that talks to incusd: its REST API on the unix socket, background operations, the
// operations' websockets and the file API. Errors leave here as IncusError or a socket error; the
// provider maps them to Berth's codes (errors.ts).
import { request } from 'node:http';
import WebSocket from 'ws';
import { IncusError, operationResult, parseEnvelope, parseOperation, type Envelope, type Operation } from './api.ts';

export const DEFAULT_SOCKET = '/var/lib/incus/unix.socket';

export type RequestOptions = { body?: unknown; raw?: Buffer; headers?: Record<string, string>; timeoutMs?: number };

export class IncusClient {
  socketPath: string;

  constructor({ socketPath = DEFAULT_SOCKET }: { socketPath?: string } = {}) {
    this.socketPath = socketPath;
  }

  /** One HTTP exchange; resolves with the status and the whole body. */
  http(method: string, path: string, { body, raw, headers = {}, timeoutMs = 60_000 }: RequestOptions = {}): Promise<{ status: number; body: Buffer }> {
    const payload = raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.socketPath, method, path,
        headers: {
          ...(payload ? { 'content-length': String(payload.length) } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        timeout: timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
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
    const url = `ws+unix://${this.socketPath}:/1.0/operations/${encodeURIComponent(operationId)}/websocket?secret=${encodeURIComponent(secret)}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once('open', () => { ws.off('error', reject); resolve(ws); });
      ws.once('error', reject);
    });
  }

  /** Writes a file into an instance, running or stopped, with its owner and mode. */
  async writeFile(instance: string, path: string, content: string | Buffer, { uid = 0, gid = 0, mode = 0o644, type = 'file' } = {}) {
    const res = await this.http('POST', `/1.0/instances/${encodeURIComponent(instance)}/files?path=${encodeURIComponent(path)}`, {
      raw: Buffer.from(content),
      headers: {
        'content-type': 'application/octet-stream',
        'x-incus-uid': String(uid), 'x-incus-gid': String(gid), 'x-incus-mode': mode.toString(8).padStart(4, '0'),
        'x-incus-type': type, 'x-incus-write': 'overwrite',
      },
    });
    parseEnvelope(res.status, res.body.toString('utf8'));
  }

  /** Creates a directory in an instance; one that exists already is left as it is. */
  mkdir(instance: string, path: string, mode = 0o755) {
    return this.writeFile(instance, path, '', { mode, type: 'directory' });
  }
}

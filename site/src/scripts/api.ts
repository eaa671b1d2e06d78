// Berth's HTTP API from the page (same origin). Every failure becomes an ApiFailure with the server's
// code and message, or code NETWORK when the server could not be reached at all.
import { isRecord } from './storage.ts';

export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  constructor(status: number, code: string, message: string, requestId?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
  /** The session is gone (expired, removed, from a server that forgot it, lost with its machine, or ended for its machine's maintenance). */
  get sessionGone() {
    return this.code === 'SESSION_NOT_FOUND' || this.code === 'UNAUTHORIZED' || this.machineLost || this.machineMaintenance;
  }
  /** The sandbox was ended because its machine was taken down for planned maintenance; the message says what to do. */
  get machineMaintenance() {
    return this.code === 'MACHINE_MAINTENANCE';
  }
  /** The machine running the sandbox went away (a cluster member lost); the message says so and what to do. */
  get machineLost() {
    return this.code === 'MACHINE_LOST';
  }
  get unreachable() {
    return this.code === 'NETWORK';
  }
}

export type Req = { token?: string; json?: unknown; signal?: AbortSignal };

export async function api<T>(method: string, path: string, { token, json, signal }: Req = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), signal });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiFailure(0, 'NETWORK', 'Cannot reach the Berth server. It may be down or restarting, or your connection dropped.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = isRecord(body) && isRecord(body.error) ? body.error : {};
    const code = typeof e.code === 'string' ? e.code : `HTTP_${res.status}`;
    const message =
      typeof e.message === 'string'
        ? e.message
        : res.status >= 502
          ? 'The Berth server is not answering properly (a proxy in front of it reported an error).'
          : `The server answered ${res.status}.`;
    throw new ApiFailure(res.status, code, message, typeof e.requestId === 'string' ? e.requestId : undefined);
  }
  if (body === undefined) throw new ApiFailure(res.status, 'BAD_RESPONSE', 'The server sent an answer this page cannot read.');
  return body as T;
}

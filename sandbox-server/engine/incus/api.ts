// Incus REST API envelopes and operations, parsed (not cast) at the edge. Pure: no I/O here.
// Every reply is {type: "sync"|"async"|"error", ...}; an async reply names a background operation
// that finishes with status_code 200 (Success), 400 (Failure) or 401 (Cancelled) (doc/rest-api.md).

/** An error from incusd: the HTTP (or operation) status and the daemon's own message, for the log only. */
export class IncusError extends Error {
  status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'IncusError';
    this.status = status;
  }
}

export type Operation = {
  id: string;
  status: string;
  statusCode: number;
  err: string;
  metadata: Record<string, unknown>;
};

export type Envelope = { type: 'sync'; status: number; metadata: unknown } | { type: 'async'; operation: Operation };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseOperation(v: unknown): Operation {
  if (!isObject(v) || typeof v.id !== 'string') throw new IncusError(502, 'malformed operation in the reply');
  return {
    id: v.id,
    status: typeof v.status === 'string' ? v.status : '',
    statusCode: typeof v.status_code === 'number' ? v.status_code : 0,
    err: typeof v.err === 'string' ? v.err : '',
    metadata: isObject(v.metadata) ? v.metadata : {},
  };
}

/** Reads one reply body; an error envelope (or a body that is not one) becomes an IncusError. */
export function parseEnvelope(httpStatus: number, body: string): Envelope {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new IncusError(httpStatus >= 400 ? httpStatus : 502, `not JSON (HTTP ${httpStatus})`);
  }
  if (!isObject(v)) throw new IncusError(502, 'reply is not an object');
  if (v.type === 'error' || httpStatus >= 400) {
    const code = typeof v.error_code === 'number' && v.error_code ? v.error_code : httpStatus;
    throw new IncusError(code, typeof v.error === 'string' && v.error ? v.error : `HTTP ${httpStatus}`);
  }
  if (v.type === 'async') return { type: 'async', operation: parseOperation(v.metadata) };
  if (v.type === 'sync') return { type: 'sync', status: httpStatus, metadata: v.metadata };
  throw new IncusError(502, `unknown reply type ${String(v.type)}`);
}

/** A finished operation's outcome: its metadata, or the error it failed with. */
export function operationResult(op: Operation): Record<string, unknown> {
  if (op.statusCode === 200) return op.metadata;
  if (op.statusCode === 401) throw new IncusError(409, op.err || 'operation cancelled');
  if (op.statusCode >= 400) throw new IncusError(op.statusCode === 400 ? 500 : op.statusCode, op.err || `operation ${op.status}`);
  throw new IncusError(504, `operation still ${op.status || 'running'}`);
}

/** The websocket secrets of an exec operation: "0" (stdin or the pty), "1", "2", and "control". */
export function execFds(op: Operation): Record<string, string> {
  const fds = op.metadata.fds;
  if (!isObject(fds)) throw new IncusError(502, 'exec operation without websocket secrets');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fds)) if (typeof v === 'string') out[k] = v;
  if (!out['0']) throw new IncusError(502, 'exec operation without a stdin websocket');
  return out;
}

/** The exit status in a finished exec operation's metadata (-1 when it is missing). */
export function execReturn(metadata: Record<string, unknown>): number {
  return typeof metadata.return === 'number' ? metadata.return : -1;
}

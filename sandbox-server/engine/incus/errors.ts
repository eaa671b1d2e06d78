// Incus's errors mapped to Berth's codes, the way engine/docker.ts maps Docker's: a daemon's raw message
// goes to the server's log (as the cause), never to a learner.
import { ApiError } from '../../errors.ts';
import { IncusError } from './api.ts';

type SocketErr = { code?: string; syscall?: string };

const unavailable = (e: unknown) => {
  const s = e as SocketErr;
  return s?.syscall === 'connect' || s?.code === 'ECONNREFUSED' || s?.code === 'ENOENT' || s?.code === 'ECONNRESET' || s?.code === 'EPIPE';
};

/**
 * An Incus cluster with a member away: Incus creates and deletes a managed network (each session's bridge) only
 * with every member there (its notifier's NotifyAll policy, cmd/incusd/networks.go), before the member is
 * declared offline ("failed to notify peer") and after ("peer node … is down").
 */
export const MEMBER_AWAY = /peer node \S+ is down|failed to notify peer/;

export const memberAway = (cause?: unknown) =>
  new ApiError(
    503,
    'ENGINE_UNAVAILABLE',
    'One of the machines behind this Berth server is away, and sandboxes cannot be made or removed until it is back. Try again in a few minutes.',
    cause,
  );

export function incusError(err: unknown, what: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof IncusError && MEMBER_AWAY.test(err.message)) return memberAway(err);
  if (unavailable(err)) return new ApiError(503, 'ENGINE_UNAVAILABLE', 'The container engine is not answering. Try again in a moment.', err);
  if (err instanceof IncusError) {
    if (err.status === 404) return new ApiError(404, 'SESSION_NOT_FOUND', `${what}: it no longer exists.`, err);
    if (err.status === 409 || /is not running|is busy|already running/i.test(err.message)) {
      return new ApiError(409, 'CONFLICT', `${what}: it is busy or in the wrong state.`, err);
    }
    if (/insufficient|no space|quota/i.test(err.message)) return new ApiError(503, 'OUT_OF_CAPACITY', `${what}: the host is out of room.`, err);
    // A fleet whose placement group is empty: no machine is ready for learners (cluster.ts).
    if (/Couldn't find a cluster member for the instance/.test(err.message))
      return new ApiError(503, 'OUT_OF_CAPACITY', `${what}: no machine can take a new sandbox right now. Try again in a few minutes.`, err);
  }
  return new ApiError(502, 'SANDBOX_FAILED', `${what} failed in the container engine.`, err);
}

export const isNotFound = (err: unknown) => err instanceof IncusError && err.status === 404;

/**
 * Incus runs one stop (or one delete) of an instance at a time; a caller who asks while another's is running
 * waits for it and is answered this when it succeeded: what was asked is done, by the other caller.
 */
export const doneByAnother = (err: unknown) => err instanceof IncusError && /matching non-reusable operation has now succeeded/i.test(err.message);

/** An exec whose sockets did not all connect: its command never started (engine/incus/exec.ts). */
export const SOCKETS_FAILED = 'exec sockets did not connect';

/**
 * The failures measured as transient on this kind of host (machine-facts.md): a bridge created while other
 * veths come and go, an exec whose attach liblxc reports failed, and an exec whose sockets did not all
 * connect. Nothing else is retried.
 */
export function isTransient(err: unknown): boolean {
  const m = err instanceof Error ? err.message : '';
  return m.startsWith(SOCKETS_FAILED) || /Failed to delete bridge children interfaces|Failed to retrieve PID of executing child process/.test(m);
}

/** Runs `fn`, again after a short pause when it failed with a transient error (at most `tries` times). */
export async function withRetry<T>(fn: () => Promise<T>, tries = 3, pauseMs = 200): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries || !isTransient(err)) throw err;
      await new Promise((r) => setTimeout(r, pauseMs * i));
    }
  }
}

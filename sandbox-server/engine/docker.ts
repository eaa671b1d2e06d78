// The one place that talks to the host engine. Docker's own errors are mapped to Berth's codes here,
// so a daemon's raw message never reaches a learner.
import Docker from 'dockerode';
import { ApiError } from '../errors.ts';

export function connect(host: string): Docker {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
}

type DockerErr = { statusCode?: number; code?: string; message?: string; syscall?: string };

export function engineError(err: unknown, what: string): ApiError {
  const e = err as DockerErr;
  if (e?.syscall === 'connect' || e?.code === 'ECONNRESET') {
    return new ApiError(503, 'ENGINE_UNAVAILABLE', 'The container engine is not answering. Try again in a moment.', err);
  }
  if (e?.statusCode === 404) return new ApiError(404, 'SESSION_NOT_FOUND', `${what}: it no longer exists.`, err);
  if (e?.statusCode === 409) return new ApiError(409, 'CONFLICT', `${what}: it is busy or in the wrong state.`, err);
  return new ApiError(502, 'SANDBOX_FAILED', `${what} failed in the container engine.`, err);
}

export const isNotFound = (err: unknown) => (err as DockerErr)?.statusCode === 404;

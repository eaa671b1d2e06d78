// lxcfs and incusd: found when already running (an init system's or an earlier bring-up's), else started
// detached with their logs and pid files under <state>/incus/. lxcfs must be mounted before incusd starts:
// incusd decides at start whether to give containers lxcfs' /proc files.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonEnv } from '../bootstrap/daemon-env.ts';
import { IncusError } from './errors.ts';

export const INCUSD = '/usr/libexec/incus/incusd';
export const LXCFS_DIR = '/var/lib/lxcfs';

export function incusSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env.INCUS_SOCKET ?? join(env.INCUS_DIR ?? '/var/lib/incus', 'unix.socket');
}

/** GET /1.0 on the unix socket: resolves with the status code, or 0 when nothing answers. */
export function pingIncus(socketPath: string, timeoutMs = 2000): Promise<number> {
  return new Promise((done) => {
    if (!existsSync(socketPath)) return done(0);
    const req = request({ socketPath, path: '/1.0', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('timeout', () => {
      req.destroy();
      done(0);
    });
    req.on('error', () => done(0));
    req.end();
  });
}

/** lxcfs is mounted and answers (a dead lxcfs leaves a mount whose files fail with ENOTCONN). */
export function lxcfsAlive(): boolean {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === LXCFS_DIR && l.includes('fuse.lxcfs'));
  if (!mounted) return false;
  try {
    return readFileSync(join(LXCFS_DIR, 'proc', 'uptime'), 'utf8').length > 0;
  } catch {
    return false;
  }
}

const systemdRuns = () => existsSync('/run/systemd/system');

function startDetached(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env) {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: daemonEnv(env) });
  child.unref();
  return child;
}

export async function ensureLxcfs(stateDir: string, log: (m: string) => void): Promise<{ started: boolean }> {
  if (lxcfsAlive()) return { started: false };
  if (systemdRuns() && spawnSync('systemctl', ['start', 'lxcfs']).status === 0 && lxcfsAlive()) return { started: true };
  // A mount left behind by a dead lxcfs has to go before a new one can take its place.
  spawnSync('umount', ['-l', LXCFS_DIR], { stdio: 'ignore' });
  mkdirSync(LXCFS_DIR, { recursive: true });
  log(`starting lxcfs on ${LXCFS_DIR}`);
  // lxcfs stays in the foreground; it is ready once its files answer.
  const logFile = join(stateDir, 'lxcfs.log');
  const child = startDetached('lxcfs', ['--pidfile', join(stateDir, 'lxcfs.pid'), LXCFS_DIR], logFile);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && !exited; ) {
    if (lxcfsAlive()) return { started: true };
    await sleep(50);
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
  throw new IncusError('LXCFS_FAILED', `lxcfs did not mount ${LXCFS_DIR} within 15 s: ${tail}`);
}

/** `started`: this call started it (an incusd found running, whoever started it, is only used). */
export type IncusDaemon = { socketPath: string; started: boolean; logFile: string | null };

export async function ensureIncusd(stateDir: string, log: (m: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<IncusDaemon> {
  const socketPath = incusSocket(env);
  if ((await pingIncus(socketPath)) === 200) return { socketPath, started: false, logFile: null };
  if (systemdRuns() && spawnSync('systemctl', ['start', 'incus']).status === 0 && (await waitForSocket(socketPath, 60_000, () => true))) {
    return { socketPath, started: false, logFile: null };
  }
  const logFile = join(stateDir, 'incusd.log');
  log(`starting incusd (log ${logFile})`);
  // As the Debian init script does: many containers need many open files and processes. Raising a hard
  // limit needs CAP_SYS_RESOURCE, which some hosts (this project's VMs) withhold: then the hard limit it is.
  const raise = 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -u unlimited 2>/dev/null; exec "$0" "$@"';
  const outFile = join(stateDir, 'incusd.out');
  const child = startDetached('sh', ['-c', raise, INCUSD, '--group', 'root', '--logfile', logFile], outFile, env);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  if (!(await waitForSocket(socketPath, 60_000, () => !exited))) {
    const tail = [logFile, outFile]
      .filter(existsSync)
      .map((f) => `${f}:\n${logGist(readFileSync(f, 'utf8'))}`)
      .join('\n');
    throw new IncusError(
      'INCUSD_START_FAILED',
      `incusd did not answer on ${socketPath} within 60 s${exited ? ' (it exited)' : ''}. Last lines of its logs:\n${tail}`,
    );
  }
  // GET /1.0 answers a little before the daemon has finished starting (networks, storage).
  const ready = spawnSync('incus', ['admin', 'waitready', '--timeout=60'], { encoding: 'utf8', env });
  if (ready.status !== 0) throw new IncusError('INCUSD_START_FAILED', `incusd started but is not ready: ${ready.stderr.trim()}`);
  return { socketPath, started: true, logFile };
}

/** The lines that say why a daemon died: a Go panic's first lines (its cause), errors, then the last lines. */
export function logGist(text: string, last = 5): string {
  const lines = text.trim().split('\n');
  const panicAt = lines.findIndex((l) => /^(panic|fatal error):/.test(l));
  const why = panicAt >= 0 ? lines.slice(panicAt, panicAt + 8) : lines.filter((l) => /level=(error|fatal)|^Error:/i.test(l)).slice(-5);
  const tail = lines.slice(-last).filter((l) => !why.includes(l));
  return [...why, ...(why.length && tail.length ? ['…'] : []), ...tail].join('\n');
}

async function waitForSocket(socketPath: string, timeoutMs: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await pingIncus(socketPath, 1000)) === 200) return true;
    if (!alive()) return false;
    await sleep(100);
  }
  return false;
}

// Finds a working Docker engine, or installs and starts one under the state folder.
// Order: DOCKER_HOST, /var/run/docker.sock, an engine we started earlier, then a new one.
// An engine that we did not start is only ever used, never stopped or reconfigured.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { daemonEnv } from './daemon-env.ts';

export type Engine = {
  /** Value for DOCKER_HOST, e.g. unix:///work/main/.berth/docker.sock */
  host: string;
  socketPath: string | null;
  startedByBerth: boolean;
};

export class EngineError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.BERTH_STATE_DIR ?? join(import.meta.dirname, '..', '..', '.berth'));
}

/** Resolves true when the engine answers GET /_ping within the timeout. */
export function ping(host: string, timeoutMs = 1500): Promise<boolean> {
  return new Promise((done) => {
    let target: { socketPath?: string; host?: string; port?: number };
    if (host.startsWith('unix://')) target = { socketPath: host.slice('unix://'.length) };
    else if (host.startsWith('tcp://') || host.startsWith('http://')) {
      const u = new URL(host.replace(/^tcp:/, 'http:'));
      target = { host: u.hostname, port: Number(u.port || 2375) };
    } else return done(false);
    if (target.socketPath && !existsSync(target.socketPath)) return done(false);
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      done(false);
    });
    req.on('error', () => done(false));
    req.end();
  });
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function isDebianLike(): boolean {
  return existsSync('/etc/debian_version') && hasCommand('apt-get');
}

function installDockerIo(log: (msg: string) => void): void {
  log("no Docker engine answers; installing Debian's docker.io with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', 'docker.io'],
  ]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new EngineError(
        'APT_FAILED',
        `apt-get ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}\n` +
          'Install a Docker engine by hand (Debian: apt-get install docker.io) or set DOCKER_HOST.',
      );
    }
  }
}

async function waitFor(host: string, timeoutMs: number, isAlive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ping(host, 1000)) return true;
    if (!isAlive()) return false;
    await new Promise((r) => setTimeout(r, 150));
  }
  return false;
}

/**
 * A dockerd that keeps everything under `dir` (socket, data, exec root, pid file) on overlay2, with containerd
 * state in namespaces of its own (`namespace`, `<namespace>-plugins`), so that it never collides with another
 * engine's containerd on the machine. The runtime's engine and the pull benchmark's scratch engine both start so.
 */
export function dockerdArgs(dir: string, namespace: string): string[] {
  return [
    '--host',
    `unix://${join(dir, 'docker.sock')}`,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '--containerd-namespace',
    namespace,
    '--containerd-plugins-namespace',
    `${namespace}-plugins`,
    '--storage-driver',
    'overlay2',
  ];
}

function startDockerd(dir: string, env: NodeJS.ProcessEnv): { sock: string; child: ReturnType<typeof spawn> } {
  const sock = join(dir, 'docker.sock');
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'exec'), { recursive: true });
  const logFd = openSync(join(dir, 'dockerd.log'), 'a', 0o600);
  const child = spawn(
    'dockerd',
    [
      ...dockerdArgs(dir, 'berth'),
      // Every sandbox gets its own bridge network; the stock pools hold only ~30 of them.
      '--default-address-pool',
      `base=${env.BERTH_ADDRESS_POOL ?? '10.201.0.0/16'},size=26`,
    ],
    { detached: true, stdio: ['ignore', logFd, logFd], env: daemonEnv(env) },
  );
  child.unref();
  return { sock, child };
}

export type EnsureOptions = { env?: NodeJS.ProcessEnv; log?: (msg: string) => void; install?: boolean };

/** Finds or starts an engine. Idempotent: a running engine is found in milliseconds. */
export async function ensureEngine(opts: EnsureOptions = {}): Promise<Engine> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  if (env.DOCKER_HOST) {
    if (await ping(env.DOCKER_HOST)) return { host: env.DOCKER_HOST, socketPath: socketOf(env.DOCKER_HOST), startedByBerth: false };
    throw new EngineError(
      'ENGINE_UNAVAILABLE',
      `DOCKER_HOST=${env.DOCKER_HOST} is set but no Docker engine answers there. Start that engine or unset DOCKER_HOST.`,
    );
  }
  const system = 'unix:///var/run/docker.sock';
  if (await ping(system)) return { host: system, socketPath: '/var/run/docker.sock', startedByBerth: false };

  const dir = stateDir(env);
  const ours = `unix://${join(dir, 'docker.sock')}`;
  if (await ping(ours)) return { host: ours, socketPath: join(dir, 'docker.sock'), startedByBerth: true };

  if (process.getuid?.() !== 0 || !isDebianLike()) {
    throw new EngineError(
      'ENGINE_UNAVAILABLE',
      'No Docker engine answers (DOCKER_HOST unset, /var/run/docker.sock silent). ' +
        'Berth can install and start one only when run as root on Debian or Ubuntu. ' +
        'Install Docker Engine (https://docs.docker.com/engine/install/) and start it, or set DOCKER_HOST.',
    );
  }
  if (!hasCommand('dockerd')) {
    if (opts.install === false) throw new EngineError('ENGINE_UNAVAILABLE', 'dockerd is not installed (apt-get install docker.io).');
    installDockerIo(log);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 }); // state, logs and tokens: the operator's only
  log(`starting dockerd with its state under ${dir}`);
  const { sock, child } = startDockerd(dir, env);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  if (!(await waitFor(ours, 60_000, () => !exited))) {
    const tail = existsSync(join(dir, 'dockerd.log')) ? readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-5).join('\n') : '';
    throw new EngineError('ENGINE_START_FAILED', `dockerd did not answer within 60 s. Last lines of ${join(dir, 'dockerd.log')}:\n${tail}`);
  }
  writeFileSync(join(dir, 'engine.json'), JSON.stringify({ host: ours, startedAt: new Date().toISOString() }) + '\n');
  return { host: ours, socketPath: sock, startedByBerth: true };
}

function socketOf(host: string): string | null {
  return host.startsWith('unix://') ? host.slice('unix://'.length) : null;
}

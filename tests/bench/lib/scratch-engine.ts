// A throwaway dockerd for baselines that must start empty (a cold pull on the host engine's own software):
// its own data root and sockets under the state folder (the host engine's file system, so the same disk), its
// own bridge `bb<pid>` on 192.0.2.1/30 (TEST-NET-1: no clash with docker0 or any sandbox network), no iptables
// rules, no sysctls, nothing shared with the host engine. stop() removes it all again.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonEnv } from '../../../runtime/bootstrap/daemon-env.ts';
import { dockerdArgs, ping, stateDir } from '../../../runtime/bootstrap/engine.ts';

export type ScratchEngine = { host: string; stop: () => Promise<void> };

function ip(args: string[]) {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

export async function startScratchEngine(log: (m: string) => void = () => {}): Promise<ScratchEngine> {
  const tag = `bb${process.pid % 100_000}`;
  const dir = join(stateDir(), `bench-engine-${process.pid}`);
  const sock = join(dir, 'docker.sock');
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'exec'), { recursive: true });
  ip(['link', 'add', tag, 'type', 'bridge']);
  let child: ReturnType<typeof spawn> | null = null;
  let exited = false;
  const stop = async () => {
    if (child && !exited) {
      child.kill('SIGTERM');
      for (let i = 0; i < 300 && !exited; i++) await sleep(100);
      if (!exited) child.kill('SIGKILL');
    }
    // dockerd unmounts its layers on a clean stop; a folder still holding mounts is left for a person to look at.
    if (!readFileSync('/proc/mounts', 'utf8').includes(` ${dir}/`)) rmSync(dir, { recursive: true, force: true });
    else log(`scratch engine: ${dir} still has mounts; left in place`);
    spawnSync('ip', ['link', 'del', tag]);
  };
  try {
    ip(['addr', 'add', '192.0.2.1/30', 'dev', tag]);
    ip(['link', 'set', tag, 'up']);
    const logFd = openSync(join(dir, 'dockerd.log'), 'a', 0o600);
    child = spawn('dockerd', [...dockerdArgs(dir, tag), '--bridge', tag, '--iptables=false', '--ip-forward=false', '--ip-masq=false'], {
      stdio: ['ignore', logFd, logFd],
      env: daemonEnv(),
    });
    child.on('exit', () => {
      exited = true;
    });
    for (let i = 0; i < 600 && !exited; i++) {
      if (await ping(`unix://${sock}`)) {
        log(`scratch engine answering on ${sock} (bridge ${tag})`);
        return { host: `unix://${sock}`, stop };
      }
      await sleep(100);
    }
    const tail = existsSync(join(dir, 'dockerd.log')) ? readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-5).join('\n') : '';
    throw new Error(`the scratch dockerd did not answer within 60 s${exited ? ' (it exited)' : ''}:\n${tail}`);
  } catch (err) {
    await stop();
    throw err;
  }
}

// The host side of the benchmarks: the docker CLI on the host engine, memory from /proc and cgroups,
// the shared machine's heavy-work lock, and a description of the machine for the results.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOCK = '/tmp/berth-heavy.lock';

/** Waits while the lead runs the full test suite: the benchmark would disturb it and be disturbed. */
export async function waitForQuietMachine(log: (m: string) => void) {
  // The smoke run inside `npm test` is part of the suite that may hold the lock.
  if (!existsSync(LOCK) || process.env.BERTH_BENCH_SMOKE === '1') return;
  log(`${LOCK} exists (the full test suite is running): waiting for it to go`);
  while (existsSync(LOCK)) await sleep(10_000);
}

export type CmdResult = { stdout: string; stderr: string; ms: number };

/** Runs a program to completion and times it from spawn to exit. Rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 600_000 },
      (err, stdout, stderr) => {
        const ms = performance.now() - t0;
        if (err) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else ok({ stdout, stderr, ms });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export function hostDocker(engine: string) {
  return (args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}) =>
    run('docker', args, { ...opts, env: { ...process.env, ...opts.env, DOCKER_HOST: engine } });
}

/** Bytes of memory in use on the host: what the kernel says is not available to a new program. */
export function hostMemory() {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable'), used: kb('MemTotal') - kb('MemAvailable') };
}

export type CgroupMemory = { usage: number; workingSet: number; rss: number; cache: number; shmem: number };

/** The memory cgroup folder of a process: the v1 memory controller's, or the v2 unified one. */
export function memoryCgroupOfPid(pid: number): { dir: string; v1: boolean } {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1) return { dir: join('/sys/fs/cgroup/memory', v1.split(':')[2]), v1: true };
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (!v2) throw new Error(`no memory cgroup for pid ${pid}`);
  return { dir: join('/sys/fs/cgroup', v2.slice(3)), v1: false };
}

/** Memory charged to the cgroup a process lives in (cgroup v1 memory controller or cgroup v2). */
export function cgroupMemoryOfPid(pid: number): CgroupMemory {
  const { dir, v1 } = memoryCgroupOfPid(pid);
  const s = Object.fromEntries(
    readFileSync(join(dir, 'memory.stat'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  ) as Record<string, number>;
  if (v1) {
    const usage = Number(readFileSync(join(dir, 'memory.usage_in_bytes'), 'utf8'));
    // docker stats shows usage less inactive file pages; the same "working set" figure is given here.
    return { usage, workingSet: usage - (s.total_inactive_file ?? 0), rss: s.total_rss ?? NaN, cache: s.total_cache ?? NaN, shmem: s.total_shmem ?? NaN };
  }
  const usage = Number(readFileSync(join(dir, 'memory.current'), 'utf8'));
  return { usage, workingSet: usage - (s.inactive_file ?? 0), rss: s.anon ?? NaN, cache: s.file ?? NaN, shmem: s.shmem ?? NaN };
}

/** Nanoseconds of CPU a process's cgroup has used (cpuacct on cgroup v1, cpu.stat on v2). */
export function cgroupCpuOfPid(pid: number): number {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?cpuacct(,[^:]*)?:/.test(l));
  if (v1) {
    const ctrl = v1.split(':')[1];
    return Number(readFileSync(join('/sys/fs/cgroup', ctrl, v1.split(':')[2], 'cpuacct.usage'), 'utf8'));
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (!v2) throw new Error(`no cpu cgroup for pid ${pid}`);
  const stat = readFileSync(join('/sys/fs/cgroup', v2.slice(3), 'cpu.stat'), 'utf8');
  return Number(/^usage_usec (\d+)/m.exec(stat)?.[1] ?? NaN) * 1000;
}

export async function containerPid(docker: ReturnType<typeof hostDocker>, name: string): Promise<number> {
  const pid = Number((await docker(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim());
  if (!pid) throw new Error(`${name} is not running`);
  return pid;
}

export async function containerMemory(docker: ReturnType<typeof hostDocker>, name: string): Promise<CgroupMemory> {
  return cgroupMemoryOfPid(await containerPid(docker, name));
}

export async function machine(engine: string) {
  const docker = hostDocker(engine);
  const git = await run('git', ['-C', join(import.meta.dirname, '..', '..', '..'), 'rev-parse', '--short', 'HEAD']).catch(() => ({ stdout: 'unknown' }));
  const server = await docker(['version', '-f', '{{.Server.Version}}']).catch(() => ({ stdout: 'unknown' }));
  const os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? 'unknown';
  return {
    date: new Date().toISOString(),
    os,
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    engine: `Docker ${server.stdout.trim()}`,
    node: process.version,
    commit: git.stdout.trim(),
    // The machine is shared: the load at the end says how much else was running.
    loadAverage1m5m15m: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** A free loopback port, for a server started by the benchmark. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? ok(a.port) : fail(new Error('no port'))));
    });
  });
}

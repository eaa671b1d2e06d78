// Commands in a learner node: always as the learner (its own uid per node, see node-spec.ts), never as root.
import type Docker from 'dockerode';
import { PassThrough, type Duplex } from 'node:stream';
import { ApiError } from '../errors.ts';

export const LEARNER_ENV = [
  'DOCKER_HOST=unix:///run/user/1000/docker.sock',
  'XDG_RUNTIME_DIR=/run/user/1000',
  'HOME=/home/learner',
  'USER=learner',
  'LANG=C.UTF-8',
  'PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
];
// By name: each node's learner has its own uid, which the node's /etc/passwd knows.
export const LEARNER = { User: 'learner', WorkingDir: '/home/learner', Env: LEARNER_ENV };

export type ExecResult = { exitCode: number; stdout: string; stderr: string; durationMs: number; truncated: boolean };

/** A bounded sink: keeps the first `max` bytes and counts the rest. */
export class Capped {
  chunks: Buffer[] = [];
  size = 0;
  dropped = 0;
  max: number;
  constructor(max: number) {
    this.max = max;
  }
  push(b: Buffer) {
    const room = this.max - this.size;
    if (room <= 0) {
      this.dropped += b.length;
      return;
    }
    const part = b.length > room ? b.subarray(0, room) : b;
    this.chunks.push(part);
    this.size += part.length;
    this.dropped += b.length - part.length;
  }
  text() {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export type RunOptions = { timeoutMs: number; maxOutput: number; stdin?: Buffer };

/** Runs `bash -c cmd` as the learner, with output capped and a hard time limit. */
export async function runCommand(container: Docker.Container, cmd: string, opts: RunOptions): Promise<ExecResult> {
  const t0 = performance.now();
  const secs = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
  // `timeout` inside the node ends the command itself; the timer below only guards against a stuck stream.
  const exec = await container.exec({
    ...LEARNER,
    Cmd: ['timeout', '-k', '2', String(secs), 'bash', '-c', cmd],
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: !!opts.stdin,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: !!opts.stdin })) as Duplex;
  const out = new Capped(opts.maxOutput);
  const err = new Capped(opts.maxOutput);
  const o = new PassThrough();
  const e = new PassThrough();
  o.on('data', (b: Buffer) => out.push(b));
  e.on('data', (b: Buffer) => err.push(b));
  container.modem.demuxStream(stream, o, e);
  if (opts.stdin) stream.end(opts.stdin);
  let timedOut = false;
  await new Promise<void>((resolve) => {
    const guard = setTimeout(() => {
      timedOut = true;
      stream.destroy();
      resolve();
    }, opts.timeoutMs + 5000);
    stream.on('end', () => {
      clearTimeout(guard);
      resolve();
    });
    stream.on('close', () => {
      clearTimeout(guard);
      resolve();
    });
    stream.on('error', () => {
      clearTimeout(guard);
      resolve();
    });
  });
  // The demuxed streams deliver their last chunks a tick after the source ends: drain them before reading.
  await Promise.all(
    [o, e].map(
      (p) =>
        new Promise<void>((done) => {
          p.once('end', done);
          p.end();
        }),
    ),
  );
  const info = await exec.inspect();
  const exitCode = info.ExitCode ?? -1;
  const elapsed = performance.now() - t0;
  // 124 is timeout(1)'s own code, 137 its kill after the grace period; a command may also exit 124 by itself.
  if (timedOut || ((exitCode === 124 || exitCode === 137) && elapsed >= opts.timeoutMs - 50)) {
    throw new ApiError(408, 'EXEC_TIMEOUT', `The command did not finish within ${Math.round(opts.timeoutMs / 1000)} s and was stopped.`);
  }
  return {
    exitCode,
    stdout: out.text(),
    stderr: err.text(),
    durationMs: Math.round(elapsed),
    truncated: out.dropped + err.dropped > 0,
  };
}

/**
 * Detach keys for Berth's own exec. Without them the host engine applies its default, Ctrl-P Ctrl-Q, and
 * swallows the very keys a learner presses to detach from `docker run -it` in their own engine (it ends
 * Berth's exec instead). No learner types this run of control characters; its first byte (Ctrl-^) is at
 * worst held back until the next keystroke.
 */
export const BERTH_DETACH_KEYS = 'ctrl-^,ctrl-@,ctrl-^,ctrl-@,ctrl-_';

/** Starts an interactive TTY process and returns its raw duplex stream and a resize function. */
export async function openTty(container: Docker.Container, cmd: string[], size: { cols: number; rows: number }) {
  const exec = await container.exec({
    ...LEARNER,
    Env: [...LEARNER_ENV, 'TERM=xterm-256color'],
    Cmd: cmd,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    DetachKeys: BERTH_DETACH_KEYS,
  });
  // stdin must be requested on both create and start, or keystrokes are dropped (dockerode#455).
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
  const resize = async (cols: number, rows: number) => {
    try {
      await exec.resize({ w: cols, h: rows });
    } catch {
      /* the process may have exited; the next read reports it */
    }
  };
  await resize(size.cols, size.rows);
  return { stream, resize, exec };
}

/** Runs `bash -c cmd` as the learner and returns its stdout as a stream (stderr is dropped). */
export async function streamCommand(container: Docker.Container, cmd: string) {
  const exec = await container.exec({ ...LEARNER, Cmd: ['bash', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: false });
  const raw = (await exec.start({ hijack: true, stdin: false })) as Duplex;
  const out = new PassThrough();
  container.modem.demuxStream(raw, out, new PassThrough().resume());
  raw.on('end', () => out.end());
  raw.on('close', () => out.end());
  raw.on('error', (err) => out.destroy(err));
  // The reader going away (a download cancelled) ends the exec's connection too.
  out.on('close', () => raw.destroy());
  return out;
}

// Commands in an Incus node, always as the learner (uid/gid 1000), over exec websockets.
// Protocol (incusd cmd/incusd/instance_exec.go, shared/ws/rwc.go): with `wait-for-websocket` the command
// starts once its sockets are connected; data travels as binary messages; an empty text message is the
// end of a stream (a "barrier"); closing the control socket kills the command; the exit status is the
// finished operation's `metadata.return`.
import { randomUUID } from 'node:crypto';
import { Duplex, PassThrough } from 'node:stream';
import type WebSocket from 'ws';
import { ApiError } from '../../errors.ts';
import { Capped, type ExecResult, type RunOptions } from '../exec.ts';
import { execFds, execReturn, IncusError } from './api.ts';
import type { IncusClient } from './client.ts';
import { isTransient, SOCKETS_FAILED, withRetry } from './errors.ts';

// The node's dockerd listens on /var/run/docker.sock with the learner's group (node-files.ts), so no DOCKER_HOST.
export const LEARNER_ENV: Record<string, string> = {
  HOME: '/home/learner',
  USER: 'learner',
  LOGNAME: 'learner',
  LANG: 'C.UTF-8',
  PATH: '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
};
// Incus can exec as uid 1000 itself, but liblxc then drops supplementary groups and the learner would lose
// the docker group; so the command starts as the node's root and setpriv becomes the learner with its groups.
const LEARNER = { user: 0, group: 0, cwd: '/home/learner' };
export const AS_LEARNER = ['setpriv', '--reuid=1000', '--regid=1000', '--init-groups', '--'];

/** Whether a websocket message is stream data or the end of the stream (a barrier). */
export const isBarrier = (isBinary: boolean) => !isBinary;

/**
 * Starts an exec operation and connects the sockets it asks for; retries the transient start failures. With
 * `wait-for-websocket` the command starts only once every socket is connected, so a socket that failed to
 * connect (incusd has answered the upgrade with a 500 now and then) means nothing ran: the others are closed
 * and the start is tried again.
 */
async function startExec(client: IncusClient, instance: string, body: object) {
  return withRetry(async () => {
    const e = await client.call('POST', `/1.0/instances/${encodeURIComponent(instance)}/exec`, { body: { ...body, ...LEARNER, 'wait-for-websocket': true } });
    if (e.type !== 'async') throw new IncusError(502, 'exec did not start an operation');
    const fds = execFds(e.operation);
    const names = Object.keys(fds);
    const settled = await Promise.allSettled(names.map((k) => client.websocket(e.operation.id, fds[k])));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      for (const r of settled) if (r.status === 'fulfilled') r.value.close();
      throw new IncusError(503, `${SOCKETS_FAILED}: ${(failed.reason as Error)?.message}`);
    }
    const sockets = settled.map((r) => (r as PromiseFulfilledResult<WebSocket>).value);
    return { id: e.operation.id, ws: Object.fromEntries(names.map((k, i) => [k, sockets[i]])) as Record<string, WebSocket> };
  });
}

/** Collects a stream's data until its barrier or close. */
function drain(ws: WebSocket, sink: Capped): Promise<void> {
  return new Promise((resolve) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBarrier(isBinary)) resolve();
      else sink.push(data);
    });
    ws.once('close', () => resolve());
    ws.once('error', () => resolve());
  });
}

/**
 * Runs `bash -c cmd` as the learner, with output capped and a hard time limit (as engine/exec.ts does for Docker).
 * Under load about one exec in 250 fails with "Failed to retrieve PID of executing child process": liblxc's attach
 * reports failure to incusd's forkexec after the attached process was already started (incusd
 * internal/server/instance/drivers/driver_lxc.go Exec), so the command may well run, unseen (measured: a blind
 * retry started `docker run --name chatty` twice). Every command therefore runs under ONCE (below) with an id of
 * its own: a retry with the same id waits for the first run and replays its output and status, so any command
 * can be retried and none runs twice. The failures come in bursts (several within a second, often beside
 * another instance's teardown in incusd's log), so the attempts spread over about six seconds.
 */
export async function runCommand(client: IncusClient, instance: string, cmd: string, opts: RunOptions, once: string = randomUUID()): Promise<ExecResult> {
  // A retry replays the first run's status: whether a 124 was the time limit is judged from the first attempt.
  const t0 = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await runOnce(client, instance, cmd, opts, once, t0);
    } catch (err) {
      if (attempt >= 6 || !isTransient(err)) throw err;
      await new Promise((r) => setTimeout(r, 400 * attempt));
    }
  }
}

const LOST = 'berth-exec: the first run of this command ended without a status';
/**
 * The exactly-once guard, run by bash as the node's root before setpriv makes the learner: `ONCE id n command…`.
 * The first run with an id claims /run/berth-exec/<id> (mkdir is atomic), runs the command with its stdin, keeps
 * the first n bytes of stdout and of stderr in files (read from fifos; the rest is read and dropped, so the
 * command is never cut short by a full pipe) and then its status. Any later run with the same id waits for that
 * status (or reports the first run lost when its guard died without one) and replays the three; the status is
 * one short write, so a reader never sees half of it. Now and then a first run clears finished entries older
 * than two minutes (a retry comes within seconds) and abandoned ones older than fifteen (commands run at most
 * ten). The learner could tamper with these files (the docker group makes them root in the node), but only
 * with their own sandbox's results.
 */
export const ONCE = `
d=/run/berth-exec/$1 n=$2; shift 2
[ -d /run/berth-exec ] || mkdir -m 0700 /run/berth-exec
if mkdir -m 0700 "$d" 2>/dev/null; then
  if (( RANDOM % 32 == 0 )); then
    find /run/berth-exec -mindepth 2 -maxdepth 2 -name rc -mmin +2 -printf '%h\\0' | xargs -0r rm -rf
    find /run/berth-exec -mindepth 1 -maxdepth 1 -mmin +15 -exec rm -rf {} +
  fi
  echo $$ > "$d/pid"
  mkfifo "$d/o" "$d/e"
  # cat writes what it reads at once (a reader cut off keeps what it read); the file size limit (in KiB,
  # SIGXFSZ ignored) stops it at the cap, and a second cat drains the rest.
  cap() { trap '' XFSZ; ulimit -f $(( (n + 1023) / 1024 )); cat > "$1" 2>/dev/null; exec cat > /dev/null; }
  cap "$d/1" < "$d/o" 2>/dev/null & o=$!
  cap "$d/2" < "$d/e" 2>/dev/null & e=$!
  "$@" > "$d/o" 2> "$d/e"
  rc=$?
  # The output ends with the command, as with docker exec: a process it left behind holding the streams
  # (a background job, a process substitution) is cut off after half a second instead of being waited for.
  # Only then: readers still busy with no writer left have reached the end and are merely slow on a loaded
  # machine, and cutting them off would lose output, so the watchdog looks (fdinfo: a stream open for writing)
  # before it cuts. It holds none of the exec's streams, so a command that leaves nothing behind is not slowed.
  ( sleep 0.5
    while :; do
      for f in /proc/[0-9]*/fd/*; do
        case $(readlink "$f" 2>/dev/null) in "$d/o"|"$d/e")
          grep -qE '^flags:[[:space:]]*[0-7]*[12]$' "\${f%/fd/*}/fdinfo/\${f##*/}" 2>/dev/null && break 2;;
        esac
      done
      sleep 0.2
    done
    pkill -P $o; pkill -P $e; kill $o $e ) < /dev/null > /dev/null 2>&1 & w=$!
  wait $o $e 2>/dev/null
  kill $w 2>/dev/null
  echo "$rc" > "$d/rc"
else
  until [ -s "$d/rc" ]; do
    if [ -s "$d/pid" ] && ! kill -0 "$(< "$d/pid")" 2>/dev/null && [ ! -s "$d/rc" ]; then echo "${LOST}" >&2; exit 255; fi
    sleep 0.05
  done
fi
read -r rc < "$d/rc"; cat "$d/1"; cat "$d/2" >&2; exit "$rc"
`;
/**
 * One attempt of runCommand; `once` is the command's id for the ONCE guard (the same on every attempt), `t0` when
 * the first attempt began. A retry after a transient failure replays the first run, which may have been cut off
 * by its time limit before this attempt started (seen in a whole test run: `sleep 30` with a 1 s limit answered
 * 200, exit 124, because only the retry's own 0.6 s counted).
 */
async function runOnce(client: IncusClient, instance: string, cmd: string, opts: RunOptions, once: string, t0: number): Promise<ExecResult> {
  const secs = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
  // `timeout` inside the node ends the command itself; the guard below only covers a stuck stream. ONCE keeps one
  // byte more than the cap of each stream, so that the cap below still tells a truncated output.
  const { id, ws } = await startExec(client, instance, {
    command: ['bash', '-c', ONCE, 'berth-once', once, String(opts.maxOutput + 1), ...AS_LEARNER, 'timeout', '-k', '2', String(secs), 'bash', '-c', cmd],
    environment: LEARNER_ENV,
    interactive: false,
  });
  const out = new Capped(opts.maxOutput);
  const err = new Capped(opts.maxOutput);
  const outputs = Promise.all([drain(ws['1'], out), drain(ws['2'], err)]);
  // stdin: the bytes given, then the barrier, so a command reading stdin sees EOF instead of waiting.
  const stdin = ws['0'];
  for (let i = 0; opts.stdin && i < opts.stdin.length; i += 64 * 1024) stdin.send(opts.stdin.subarray(i, i + 64 * 1024), { binary: true });
  stdin.send('');
  let timedOut = false;
  let guard: NodeJS.Timeout | undefined;
  const stuck = new Promise<null>((resolve) => {
    guard = setTimeout(() => {
      timedOut = true;
      resolve(null);
    }, opts.timeoutMs + 5000);
  });
  try {
    const op = await Promise.race([client.wait(id, opts.timeoutMs + 4000), stuck]);
    // The operation can finish before the last output messages are read from the sockets.
    if (op) await Promise.race([outputs, stuck]);
    const finished = op !== null && op.statusCode >= 200; // a wait that timed out returns the operation still running
    if (finished && op.statusCode !== 200) throw new IncusError(op.statusCode === 400 ? 500 : op.statusCode, op.err);
    const exitCode = finished ? execReturn(op.metadata) : -1;
    const elapsed = performance.now() - t0;
    if (exitCode === 255 && err.text().trim() === LOST) {
      throw new ApiError(
        502,
        'SANDBOX_FAILED',
        'The command was started, but the engine lost it before it finished. Check its effect, then run it again if needed.',
      );
    }
    // 124 is timeout(1)'s own code, 137 its kill after the grace period; a command may also exit 124 by itself.
    if (!finished || timedOut || ((exitCode === 124 || exitCode === 137) && elapsed >= opts.timeoutMs - 50)) {
      throw new ApiError(408, 'EXEC_TIMEOUT', `The command did not finish within ${Math.round(opts.timeoutMs / 1000)} s and was stopped.`);
    }
    return { exitCode, stdout: out.text(), stderr: err.text(), durationMs: Math.round(elapsed), truncated: out.dropped + err.dropped > 0 };
  } finally {
    clearTimeout(guard);
    // Closing the control socket kills a command still running (only after a timeout).
    for (const s of Object.values(ws)) s.close();
  }
}

/**
 * Runs `bash -c cmd` as the learner and streams its stdout (binary-safe, no pty; stderr is dropped), e.g. a tar
 * of a folder or the ports watcher. A slow reader pauses the socket; the reader going away ends the command
 * (closing the control socket kills it). Not retried: a stream may already have been read from.
 */
export async function streamCommand(client: IncusClient, instance: string, cmd: string) {
  const { ws } = await startExec(client, instance, { command: [...AS_LEARNER, 'bash', '-c', cmd], environment: LEARNER_ENV, interactive: false });
  const out = new PassThrough();
  const data = ws['1'];
  data.on('message', (chunk: Buffer, isBinary: boolean) => {
    if (isBarrier(isBinary)) {
      out.end();
      return;
    }
    if (!out.write(chunk)) {
      data.pause();
      out.once('drain', () => data.resume());
    }
  });
  data.once('close', () => out.end());
  data.once('error', (e) => out.destroy(e));
  ws['2'].on('message', () => {
    /* stderr is not part of the stream */
  });
  ws['0'].send(''); // stdin: at its end at once
  out.on('close', () => {
    for (const s of Object.values(ws)) s.close();
  });
  return out;
}

/**
 * An exec's streams as one Node stream: backpressure pauses the websocket, destroy kills the command (it closes
 * the control socket). The pty of an interactive exec is one websocket both ways (`data`); a non-interactive
 * exec reads stdout from `output` and writes stdin to `data`, and ending the writable side ends the command's
 * stdin (a barrier), which a pty has no use for.
 */
export class ExecStream extends Duplex {
  data: WebSocket;
  control: WebSocket | undefined;
  output: WebSocket;
  others: WebSocket[];
  stdinEnded = false;
  idle: NodeJS.Timeout | undefined;
  timeout = 0;

  constructor(
    data: WebSocket,
    control: WebSocket | undefined,
    { output = data, others = [], allowHalfOpen = true }: { output?: WebSocket; others?: WebSocket[]; allowHalfOpen?: boolean } = {},
  ) {
    super({ allowHalfOpen });
    this.data = data;
    this.control = control;
    this.output = output;
    this.others = others;
    output.on('message', (chunk: Buffer, isBinary: boolean) => {
      this.idle?.refresh();
      if (isBarrier(isBinary)) {
        this.push(null);
        return;
      }
      if (!this.push(chunk)) output.pause();
    });
    output.once('close', () => this.push(null));
    output.once('error', (e) => this.destroy(e));
    if (output !== data) data.on('error', (e) => this.destroy(e));
  }

  override _read() {
    if (this.output.isPaused) this.output.resume();
  }

  /** As net.Socket's: 'timeout' once nothing went either way for `ms` (0: never); Node's HTTP client listens for it. */
  setTimeout(ms: number, cb?: () => void) {
    clearTimeout(this.idle);
    this.timeout = ms;
    this.idle = ms > 0 && !this.destroyed ? setTimeout(() => this.emit('timeout'), ms).unref() : undefined;
    if (cb) this.once('timeout', cb);
    return this;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void) {
    this.idle?.refresh();
    if (this.stdinEnded || this.data.readyState !== this.data.OPEN) {
      cb();
      return;
    } // the command has exited or stopped reading; its end is reported by the read side
    this.data.send(chunk, { binary: true }, (e) => cb(e ?? null));
  }

  /** Ends the command's stdin (non-interactive only); later writes are dropped. */
  endStdin() {
    if (this.output === this.data || this.stdinEnded) return;
    this.stdinEnded = true;
    if (this.data.readyState === this.data.OPEN) this.data.send('');
  }

  override _final(cb: (e?: Error | null) => void) {
    this.endStdin();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void) {
    clearTimeout(this.idle);
    this.control?.close();
    for (const s of new Set([this.data, this.output, ...this.others])) s.close();
    cb(err);
  }
}

/**
 * Runs `argv` as the learner with its stdin and stdout as one binary-safe stream (no pty) and hands back its
 * stderr websocket, whose messages the caller reads (a relay learns from it what its command is doing). Ending
 * the stream's writable side closes the command's stdin; once the command has exited (its stdout ended) the
 * stream closes (no half-open state: a pool of connections sees it go); destroying it kills the command.
 */
export async function pipeCommand(client: IncusClient, instance: string, argv: string[]) {
  const { id, ws } = await startExec(client, instance, { command: [...AS_LEARNER, ...argv], environment: LEARNER_ENV, interactive: false });
  ws.control?.on('error', () => {
    /* reported through the data sockets */
  });
  ws['2'].on('error', () => {
    /* stderr is the caller's to read; its loss is seen on stdout */
  });
  return { id, stream: new ExecStream(ws['0'], ws.control, { output: ws['1'], others: [ws['2']], allowHalfOpen: false }), stderr: ws['2'] };
}

/**
 * Starts an interactive process on a pty and returns its stream and a resize function. The terminal's command
 * attaches to (or starts) a dtach session, so running it again is harmless: when liblxc could not attach
 * (the transient failure runCommand also meets), it is started again instead of handing back a stream that
 * ends at once, which the learner would see as a dead terminal.
 */
export async function openTty(client: IncusClient, instance: string, cmd: string[], size: { cols: number; rows: number }) {
  for (let attempt = 1; ; attempt++) {
    const { id, ws } = await startExec(client, instance, {
      command: [...AS_LEARNER, ...cmd],
      environment: { ...LEARNER_ENV, TERM: 'xterm-256color' },
      interactive: true,
      width: size.cols,
      height: size.rows,
    });
    const control = ws.control;
    control?.on('error', () => {
      /* reported through the data socket */
    });
    const stream = new ExecStream(ws['0'], control);
    if (attempt < 3 && (await attachFailed(client, id, ws['0']))) {
      stream.destroy();
      await new Promise((r) => setTimeout(r, 200 * attempt));
      continue;
    }
    const resize = async (cols: number, rows: number) => {
      if (control?.readyState !== control?.OPEN) return; // the process has exited; the stream reports it
      control?.send(JSON.stringify({ command: 'window-resize', args: { width: String(cols), height: String(rows) } }));
    };
    return { stream, resize };
  }
}

/**
 * Whether an interactive exec died of the transient attach failure, judged in its first moments: output
 * means the process runs, and so does an operation not failed within half a second. Nothing waits on this
 * longer than the first output takes to arrive (the stream keeps that output for its reader).
 */
function attachFailed(client: IncusClient, id: string, data: WebSocket): Promise<boolean> {
  return Promise.race([
    new Promise<boolean>((resolve) => data.once('message', () => resolve(false))),
    client.wait(id, 1000).then(
      () => false,
      (e: unknown) => isTransient(e),
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
  ]);
}

// How a terminal reaches the tab's shell, a dtach master in the node (/tmp/.berth-tab-N holding `bash -l`).
// direct: the server connects to the master's socket itself (node-connect.c finds it safely inside the node
//   and hands the connected socket over) and speaks dtach's client protocol (dtach.ts). A keystroke then
//   crosses one socket into the node, with no exec stream and no `dtach -a` process on the way.
// exec: a `dtach -a` client in the node, started through the engine's exec with a TTY (the way it was done
//   before, and the fallback): BERTH_TERMINAL_ATTACH=exec, a provider without nodeInit, no gcc to build the
//   helper, or a helper that could not connect.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { SandboxProvider } from '../engine/provider.ts';
import { attach as attachPackets, DtachWriter, push, REDRAW, winch } from './dtach.ts';
import { endClient } from './endpoint.ts';

export type AttachMode = 'direct' | 'exec';

/** What the relay drives: output from `stream`, keystrokes through `write`, and the client's end. */
export type Attached = {
  stream: Duplex;
  write: (b: Buffer) => void;
  resize: (cols: number, rows: number) => Promise<void>;
  /** Ends the client (the shell lives on). */
  end: () => void;
  /** Bytes the client prints itself before the shell's (dtach -a's clear), to keep off the screen. */
  dropPrefix?: Buffer;
  how: AttachMode;
};

/** learner: attach, creating the shell if the tab has none, and redraw at this size. takeover: the same at
 * the learner's size. watch: attach without touching the size or the screen; never creates a shell. */
export type Role = 'learner' | 'takeover' | 'watch';

export type AttachRequest = { sandboxId: string; node: string; tab: string; cols: number; rows: number; role: Role };

/** What `dtach -a` prints on every attach (a VT100 clear), before any of the shell's output. */
export const DTACH_CLEAR = Buffer.from('\x1b[H\x1b[J');

export const socketPath = (tab: string) => `/tmp/.berth-tab-${tab}`;

/**
 * Starts the tab's shell unless it runs; a stale socket (its master gone) is replaced. bash starts only once
 * a client is attached (dtach marks its socket u+x then; 5 s at most), so its first prompt goes to that
 * client instead of being read and dropped by a master with no one attached.
 */
const ensureShell = (tab: string) => {
  const s = socketPath(tab);
  const start = `'i=0; until [ -x "$0" ] || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; exec bash -l' $s`;
  // TERM as the exec path's TTY gives it: the master passes its environment to bash.
  return `s=${s}; if [ -S $s ] && ! dtach -p $s </dev/null 2>/dev/null; then rm -f $s; fi; [ -S $s ] || TERM=xterm-256color dtach -n $s -E -z bash -c ${start}`;
};

const HELPER_SOURCE = join(import.meta.dirname, 'node-connect.c');
const builds = new Map<string, Promise<string | null>>();

/** The helper, compiled once per source under `<state>/bin` (gcc -static); null where it cannot be built. */
export function buildHelper(stateDir: string, log?: { warn: (o: object, m: string) => void }): Promise<string | null> {
  const src = readFileSync(HELPER_SOURCE);
  const out = join(stateDir, 'bin', `node-connect-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  let p = builds.get(out);
  if (!p) {
    p = new Promise((resolve) => {
      if (existsSync(out)) return resolve(out);
      mkdirSync(join(stateDir, 'bin'), { recursive: true });
      const tmp = `${out}.${randomBytes(4).toString('hex')}`;
      execFile('gcc', ['-O2', '-static', '-Wall', '-o', tmp, HELPER_SOURCE], { timeout: 60_000 }, (err, _o, stderr) => {
        if (err) {
          log?.warn({ err: stderr || err.message }, 'terminal helper could not be built: terminals attach through exec');
          return resolve(null);
        }
        renameSync(tmp, out); // whole or not at all, for a server started beside this one
        resolve(out);
      });
    });
    builds.set(out, p);
  }
  return p;
}

export type ConnectResult = { socket: Socket } | { code: number; reason: string };

/**
 * Runs the helper and returns the socket it connected inside the node, or its exit code and reason
 * (2: no socket there, 3: refused, 4: not the node or not a socket, 1: other).
 */
export function connectInNode(helper: string, init: { pid: number; cgroup: string }, path: string): Promise<ConnectResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(helper, [String(init.pid), init.cgroup, path], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    } catch (err) {
      return resolve({ code: 1, reason: (err as Error).message });
    }
    let stderr = '';
    let got: Socket | null = null;
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b;
    });
    child.on('message', (_m, handle) => {
      if (handle) got = handle as Socket;
    });
    child.on('error', (err) => {
      stderr += err.message;
    });
    child.on('close', (code) => {
      // The channel is closed, not disconnected by us: the socket stays ours once handed over.
      if (got && code === 0) resolve({ socket: got });
      else {
        (got as Socket | null)?.destroy();
        resolve({ code: code ?? 1, reason: stderr.trim() || `exit ${code}` });
      }
    });
  });
}

export type AttacherDeps = {
  provider: SandboxProvider;
  mode: AttachMode;
  stateDir: string;
  log: { warn: (o: object, m: string) => void };
};

export type Attacher = ReturnType<typeof createAttacher>;

export function createAttacher({ provider, mode, stateDir, log }: AttacherDeps) {
  const helper = mode === 'direct' && provider.nodeInit ? buildHelper(stateDir, log) : Promise.resolve(null);

  /** The tab's shell through the master's socket, or null where the direct path does not work here. */
  async function direct(r: AttachRequest, wait?: () => boolean): Promise<Attached | 'waiting' | null> {
    const bin = await helper;
    if (!bin || !provider.nodeInit) return null;
    // A node that cannot be inspected now is left to the exec path, which reports why in the learner's terms.
    const init = await provider.nodeInit(r.sandboxId, r.node).catch(() => null);
    if (!init) return null;
    const path = socketPath(r.tab);
    let res = await connectInNode(bin, init, path);
    if ('code' in res && (res.code === 2 || res.code === 3)) {
      if (r.role === 'watch') return wait?.() === false ? null : 'waiting';
      await provider.run(r.sandboxId, r.node, ensureShell(r.tab), { timeoutMs: 15_000, maxOutput: 4096 });
      res = await connectInNode(bin, init, path);
    }
    if ('code' in res) {
      log.warn({ sandbox: r.sandboxId, node: r.node, tab: r.tab, code: res.code, reason: res.reason }, 'direct terminal attach failed: attaching through exec');
      return null;
    }
    return fromSocket(res.socket, r);
  }

  function fromSocket(socket: Socket, r: AttachRequest): Attached {
    const writer = new DtachWriter(socket);
    const method = r.role === 'watch' ? REDRAW.NONE : REDRAW.WINCH;
    writer.write(attachPackets(method, r));
    return {
      stream: socket,
      how: 'direct',
      write: (b) => writer.write(push(b)),
      // A watcher must not change the learner's size: its resizes are dropped.
      resize: async (cols, rows) => {
        if (r.role !== 'watch') writer.write(winch({ cols, rows }));
      },
      end: () => socket.destroy(),
    };
  }

  /** The shell through `dtach -a` in the node, on an exec with a TTY. */
  async function viaExec(r: AttachRequest): Promise<Attached> {
    const s = socketPath(r.tab);
    const conn = `berth-term-${randomBytes(6).toString('hex')}`;
    // The shell's holder (-n) is started apart from the client, so that ending the client spares it.
    const script =
      r.role === 'watch'
        ? `exec -a ${conn} bash -c 'if [ ! -S ${s} ]; then printf "\\r\\n(waiting for the learner to open this terminal)\\r\\n"; fi; while [ ! -S ${s} ]; do sleep 1; done; exec -a ${conn} dtach -a ${s} -E -z -r none'`
        : `[ -S ${s} ] || dtach -n ${s} -E -z bash -l; exec -a ${conn} dtach -a ${s} -E -z -r winch`;
    const tty = await provider.openTty(r.sandboxId, r.node, ['bash', '-c', script], { cols: r.cols, rows: r.rows });
    const stream = tty.stream;
    return {
      stream,
      how: 'exec',
      dropPrefix: DTACH_CLEAR,
      write: (b) => stream.write(b),
      resize: r.role === 'watch' ? async () => {} : tty.resize,
      // Closing an exec's stream does not end its process, so the named client is ended too.
      end: () => {
        stream.destroy();
        void endClient(provider, r.sandboxId, r.node, conn);
      },
    };
  }

  return {
    mode,
    /**
     * Attaches to the tab's shell. A watcher of a tab that has no shell yet gets `onWaiting` once and is
     * attached when the learner opens it (checked every second while `alive()` holds).
     */
    async open(r: AttachRequest, opts: { onWaiting?: () => void; alive?: () => boolean } = {}): Promise<Attached | null> {
      const alive = opts.alive ?? (() => true);
      if (mode === 'direct') {
        let said = false;
        for (;;) {
          const a = await direct(r, alive);
          if (a !== 'waiting') {
            if (a) return a;
            break;
          }
          if (!said) {
            said = true;
            opts.onWaiting?.();
          }
          await new Promise((ok) => setTimeout(ok, 1000));
          if (!alive()) return null;
        }
      }
      if (!alive()) return null;
      return viaExec(r);
    },
  };
}

// Terminal probes: keystroke echo and bulk output, over any byte transport. The same two algorithms run in
// lib/pty-probe.py for a bare `docker exec -it` on a real pty, so every transport is measured the same way.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { connectTerminal, plain } from '../../helpers/terminal.ts';
import { freePort } from './host.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export type Transport = {
  send: (s: string) => void;
  /** Subscribes to output bytes; returns the unsubscribe function. */
  onData: (cb: (b: Buffer) => void) => () => void;
  close: () => Promise<void>;
};

/** Resolves once `done` says yes to the output seen since the call. */
function until(t: Transport, done: (seen: string) => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((ok, fail) => {
    let seen = '';
    const off = t.onData((b) => {
      seen = (seen + b.toString('latin1')).slice(-4096);
      if (done(seen)) {
        clearTimeout(timer);
        off();
        ok();
      }
    });
    const timer = setTimeout(() => {
      off();
      fail(new Error(`timed out waiting for ${what}; last output ${JSON.stringify(plain(seen).slice(-300))}`));
    }, timeoutMs);
  });
}

/** Waits until the terminal has been quiet for `quietMs`. */
async function drain(t: Transport, quietMs = 50) {
  let last = performance.now();
  const off = t.onData(() => {
    last = performance.now();
  });
  while (performance.now() - last < quietMs) await sleep(quietMs / 2);
  off();
}

export async function waitForPrompt(t: Transport, timeoutMs = 60_000) {
  await until(t, (s) => /\$ $/.test(plain(s)), timeoutMs, 'the prompt');
}

/** Types one key at a time at the prompt and times each key's echo, in milliseconds. */
export async function measureEcho(t: Transport, count: number): Promise<number[]> {
  const keys = 'abcdefghijklmnopqrstuvwxyz';
  const samples: number[] = [];
  await drain(t);
  for (let i = 0; i < count; i++) {
    if (i && i % 50 === 0) {
      t.send('\x15');
      await drain(t);
    } // Ctrl-U: keep the line short (not timed)
    const k = keys[i % keys.length];
    const echoed = until(t, (s) => s.includes(k), 10_000, `the echo of ${k}`);
    const t0 = performance.now();
    t.send(k);
    await echoed;
    samples.push(performance.now() - t0);
  }
  t.send('\x15');
  await drain(t);
  return samples;
}

/** Prints `bytes` of `yes` and times it until a marker after it arrives. */
export async function measureBulk(t: Transport, bytes: number): Promise<{ seconds: number; bytesReceived: number }> {
  await drain(t);
  let got = 0;
  let tail = '';
  let t0 = 0;
  const done = new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`bulk output did not finish; ${got} bytes arrived`));
    }, 600_000);
    const off = t.onData((b) => {
      got += b.length;
      // The typed line shows BENCH''END; only the output of echo joins it into the marker.
      tail = (tail + b.toString('latin1')).slice(-64);
      if (tail.includes('BENCHEND')) {
        clearTimeout(timer);
        off();
        ok(performance.now());
      }
    });
  });
  t0 = performance.now();
  t.send(`yes | head -c ${bytes}; echo BENCH''END\r`);
  const t1 = await done;
  await drain(t, 200);
  return { seconds: (t1 - t0) / 1000, bytesReceived: got };
}

/**
 * Berth's WebSocket terminal through the shared test client, keeping no text and acknowledging output as the
 * site's page does (tests/helpers/terminal.ts, ack: 'page').
 */
export async function berthTransport(baseUrl: string, id: string, token: string, tab: string): Promise<Transport> {
  const q = new URLSearchParams({ node: 'node1', tab, cols: '100', rows: '30' });
  const term = connectTerminal(`${baseUrl.replace(/^http/, 'ws')}/api/sessions/${id}/terminal?${q}`, token, { keepText: false, ack: 'page' });
  await term.opened;
  return {
    send: (s) => term.send(s),
    onData: (cb) => term.onData(cb),
    close: async () => {
      term.close();
      await sleep(100);
    },
  };
}

/**
 * The exec stream Berth's terminal relays on its exec path (the provider's openTty, the same dtach command as
 * terminal/attach.ts), driven from this process with no WebSocket and no Berth server in between: a
 * diagnostic that splits the web layer's cost from the engine's and dtach's.
 */
export async function engineTransport(
  openTty: (cmd: string[], size: { cols: number; rows: number }) => Promise<{ stream: Duplex }>,
  tab: string,
): Promise<Transport> {
  const s = `/tmp/.berth-tab-${tab}`;
  const tty = await openTty(['bash', '-c', `[ -S ${s} ] || dtach -n ${s} -E -z bash -l; exec dtach -a ${s} -E -z -r winch`], { cols: 100, rows: 30 });
  const subs = new Set<(b: Buffer) => void>();
  tty.stream.on('data', (b: Buffer) => {
    for (const cb of subs) cb(b);
  });
  tty.stream.on('error', () => {
    /* closed below */
  });
  return {
    send: (x) => tty.stream.write(x),
    onData: (cb) => {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    // exit ends the shell and its dtach session, as the pty probe's exit does.
    close: async () => {
      tty.stream.write('exit\r');
      await sleep(100);
      tty.stream.destroy();
    },
  };
}

/**
 * shellinabox (Debian's shellinaboxd) as a peer web terminal, spoken to the way its own page does: one
 * long-poll POST always open for output, keys POSTed hex-encoded, one key request in flight at a time.
 */
export async function shellinabox(command: string): Promise<Transport & { pid: number }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'shellinaboxd',
    ['--disable-ssl', '--localhost-only', '--port', String(port), '--quiet', '--no-beep', '--service', `/:root:root:/:${command}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b;
  });
  const url = `http://127.0.0.1:${port}/`;
  const post = async (body: string, signal?: AbortSignal) => {
    const r = await fetch(url, {
      method: 'POST',
      body,
      signal,
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'cache-control': 'no-cache' },
    });
    if (r.status !== 200) throw new Error(`shellinabox answered ${r.status}`);
    return r.text();
  };
  let session = '';
  for (let i = 0; ; i++) {
    try {
      session = (JSON.parse(await post('width=100&height=30')) as { session: string }).session;
      break;
    } catch (err) {
      if (i > 50 || child.exitCode !== null) {
        child.kill();
        throw new Error(`shellinaboxd did not start: ${(err as Error).message} ${stderr}`);
      }
      await sleep(100);
    }
  }
  const form = (extra = '') => `width=100&height=30&session=${encodeURIComponent(session)}${extra}`;
  const subs = new Set<(b: Buffer) => void>();
  const abort = new AbortController();
  let open = true;
  void (async () => {
    while (open) {
      try {
        const r = JSON.parse(await post(form(), abort.signal)) as { session?: string; data?: string };
        if (r.data) {
          const b = Buffer.from(r.data, 'utf8');
          for (const cb of subs) cb(b);
        }
        if (!r.session) open = false;
      } catch {
        if (open) await sleep(50);
      }
    }
  })();
  let pending = '';
  let inFlight = false;
  const flush = () => {
    if (inFlight || !pending || !open) return;
    const keys = Buffer.from(pending, 'utf8').toString('hex').toUpperCase();
    pending = '';
    inFlight = true;
    post(form(`&keys=${keys}`))
      .catch(() => {})
      .finally(() => {
        inFlight = false;
        flush();
      });
  };
  return {
    pid: child.pid!,
    send: (s) => {
      pending += s;
      flush();
    },
    onData: (cb) => {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    close: async () => {
      open = false;
      abort.abort();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

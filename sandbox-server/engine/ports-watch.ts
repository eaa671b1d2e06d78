// Published ports pushed from inside a node, the same way for every provider: `docker events` in the node,
// each burst answered by a `docker ps` in the same process, so the listing comes back on the stream already
// open, without another exec per change.
import { randomBytes } from 'node:crypto';
import { parsePublished } from './published.ts';
import type { RunOptions, ExecResult } from './exec.ts';
import type { PublishedPort, SandboxProvider } from './provider.ts';

const END_MARK = '@@berth-ports-end';

type Stream = NodeJS.ReadableStream & { destroy(): void };

/** A provider that can stream a command's output: every provider that has streamOut can be watched. */
export type Watchable = Pick<SandboxProvider, 'run'> & Required<Pick<SandboxProvider, 'streamOut'>>;

/**
 * Follows the node's own engine (the learner's Docker) through the provider's streamOut and run: reports its
 * published ports at once and again whenever one of its containers starts or stops, so the site is pushed the
 * list instead of polling. Returns the function that stops.
 * A stream that ends while still wanted (the engine restarted, or an exec that Incus failed to attach) is
 * started again after a pause, so the page keeps being pushed; after five restarts in a row that brought
 * nothing it gives up (the node is gone, and the session's owner stops the watcher anyway).
 */
export async function watchPorts(provider: Watchable, sandboxId: string, node: string, onPorts: (ports: PublishedPort[]) => void): Promise<() => void> {
  const streamOut = (cmd: string): Promise<Stream> => provider.streamOut(sandboxId, node, cmd);
  const run = (cmd: string, opts: RunOptions): Promise<ExecResult> => provider.run(sandboxId, node, cmd, opts);
  // A name of its own, so that stopping can end `docker events` inside the node (closing the stream
  // alone would leave it waiting there until its next write); the loop then ends with its pipe.
  const tag = `berth-events-${randomBytes(6).toString('hex')}`;
  const list = `docker ps --format '{{.ID}}\t{{.Image}}\t{{.Names}}\t{{.Ports}}'; echo ${END_MARK}`;
  // The first line (echo) asks for the first listing; events from then on ask again, so none is missed.
  const script = [
    `{ echo; exec -a ${tag} docker events --format '{{.Action}}' --filter type=container --filter event=start --filter event=die --filter event=destroy --filter event=pause --filter event=unpause; } |`,
    // A burst (die, then destroy) is answered once: drain what arrives within 30 ms, then list.
    `while read -r _; do while read -r -t 0.03 _; do :; done; ${list}; done`,
  ].join('\n');
  let stopped = false;
  let out: Stream | undefined;
  let idle = 0; // restarts in a row that brought no listing
  let timer: NodeJS.Timeout | undefined;
  const follow = (stream: Stream) => {
    out = stream;
    let buf = '';
    stream.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      for (let i = buf.indexOf(`${END_MARK}\n`); i >= 0; i = buf.indexOf(`${END_MARK}\n`)) {
        idle = 0;
        onPorts(parsePublished(buf.slice(0, i)));
        buf = buf.slice(i + END_MARK.length + 1);
      }
    });
    stream.on('error', () => {
      /* handled as the end below */
    });
    stream.once('close', again);
    stream.once('end', again);
  };
  function again() {
    if (stopped || timer || ++idle > 5) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        if (!stopped) streamOut(script).then((st) => (stopped ? st.destroy() : follow(st)), again);
      },
      500 * 2 ** Math.min(idle, 4),
    );
  }
  follow(await streamOut(script));
  return () => {
    stopped = true;
    clearTimeout(timer);
    out?.destroy();
    void run(`pkill -f '^${tag} ' || true`, { timeoutMs: 5000, maxOutput: 1024 }).catch(() => {});
  };
}

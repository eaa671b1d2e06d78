// Warm pool: single-node sandboxes started ahead of time so that a new session gets a ready engine at once.
import { newId } from '../auth.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { Limits } from '../engine/node-spec.ts';

export type PoolOptions = {
  provider: SandboxProvider;
  limits: Limits;
  target: number;
  /** Asked before each start, so the pool never pushes the host past the global cap. */
  hasRoom: () => boolean;
  onError: (err: unknown) => void;
  onCreated?: (ms: number) => void;
};

export class WarmPool {
  ready: string[] = [];
  starting = 0;
  target: number;
  stopped = false;
  opts: PoolOptions;
  /** Starts in flight, so that drain() can wait for them: a node still starting when the server stops would
   * otherwise come up after the removal pass and stay behind, owned by nobody. */
  private inFlight = new Set<Promise<void>>();

  constructor(opts: PoolOptions) {
    this.opts = opts;
    this.target = opts.target;
  }

  get size() {
    return this.ready.length + this.starting;
  }

  take(): string | undefined {
    const id = this.ready.shift();
    this.fill();
    return id;
  }

  /** Adds ready sandboxes found at start-up (e.g. from before a restart). */
  adopt(id: string) {
    this.ready.push(id);
  }

  setTarget(n: number) {
    this.target = n;
    this.fill();
  }

  /** Removes one ready sandbox (its machine is being drained); the pool refills. */
  discard(id: string) {
    const i = this.ready.indexOf(id);
    if (i >= 0) this.ready.splice(i, 1);
    this.opts.provider.removeSandbox(id).catch(this.opts.onError);
    this.fill();
  }

  /** Removes ready sandboxes above the target (e.g. the seats nobody took once a workshop ends). */
  trim() {
    for (const id of this.ready.splice(this.target)) this.opts.provider.removeSandbox(id).catch(this.opts.onError);
  }

  /** Starts as many sandboxes as are missing, at most two at a time on this small host. */
  fill() {
    if (this.stopped) return;
    while (this.size < this.target && this.starting < 2 && this.opts.hasRoom()) {
      this.starting++;
      const id = newId();
      const t0 = performance.now();
      const start: Promise<void> = this.opts.provider
        .createSandbox(id, ['node1'], this.opts.limits)
        .then(
          async () => {
            this.starting--;
            this.opts.onCreated?.(performance.now() - t0);
            if (this.stopped) await this.opts.provider.removeSandbox(id).catch(this.opts.onError);
            else this.ready.push(id);
            this.fill();
          },
          (err) => {
            this.starting--;
            this.opts.onError(err);
            // Back off rather than spin when the engine keeps failing.
            setTimeout(() => this.fill(), 5000).unref();
          },
        )
        // Never rejects: drain() awaits it, and a stop must not fail on a start's late surprise.
        .catch((err) => this.opts.onError(err))
        .finally(() => this.inFlight.delete(start));
      this.inFlight.add(start);
    }
  }

  async drain() {
    this.stopped = true;
    const ids = this.ready.splice(0);
    await Promise.all([...ids.map((id) => this.opts.provider.removeSandbox(id)), ...this.inFlight]);
  }
}

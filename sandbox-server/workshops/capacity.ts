// How many learner sandboxes of a workshop's shape this host can hold, from measurements: what an idle
// learner engine really uses (read from its cgroup through the engine's stats), what the host has left
// (MemAvailable, free disk under the state folder) and the server's own cap.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { newId } from '../auth.ts';
import type { Limits } from '../engine/node-spec.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { Workshop } from './db.ts';
import { freeDisk, hasNodeAccess, hostMemory, nodeDiskBytes, nodeMemory } from './engine.ts';

const GiB = 1024 ** 3;
const SAMPLE_TTL_MS = 10 * 60_000;
/** Margin after a probe engine answers. Measured here: its working set was 40.8 MiB at 0 s and 40.5–41.0 MiB
 * from 1 s to 45 s after `berth: engine ready`, so the engine is settled by then. */
const SETTLE_MS = 2000;

export type Sample = { at: number; source: 'pool' | 'probe'; nodes: number; idleMemoryBytes: number; idleDiskBytes: number | null };

export type CapacityDeps = {
  provider: SandboxProvider;
  manager: SandboxManager;
  stateDir: string;
  serverLimits: Limits;
  maxSandboxes: number;
  log: { info: (o: object, m: string) => void };
  settleMs?: number;
};

/** Left for the host itself and for learners' bursts above idle: a tenth of memory, at least 1 GiB. */
const reserveFor = (total: number) => Math.max(GiB, Math.round(total / 10));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export class CapacityMeter {
  deps: CapacityDeps;
  sample: Sample | null = null;
  running: Promise<Sample> | null = null;

  constructor(deps: CapacityDeps) { this.deps = deps; }

  /** An idle engine's footprint: from up to three warm pool engines, else from one probe started for the purpose. */
  async measure(refresh = false): Promise<Sample> {
    if (!refresh && this.sample && Date.now() - this.sample.at < SAMPLE_TTL_MS) return this.sample;
    this.running ??= this.take().finally(() => { this.running = null; });
    return this.running;
  }

  async take(): Promise<Sample> {
    const { provider, manager, stateDir } = this.deps;
    if (!hasNodeAccess(provider)) throw new Error('this sandbox provider cannot report memory use');
    // An engine of the pool that is about to be ready beats starting a probe beside it.
    for (let waited = 0; !manager.pool.ready.length && manager.pool.starting > 0 && waited < 30_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const read = async (ids: string[]) => {
      // A pool engine may be handed to a learner (or trimmed) while it is read: keep the ones that answered.
      const got = await Promise.allSettled(ids.map(async (id) => ({ id, mem: await nodeMemory(provider, id, 'node1') })));
      return got.flatMap((g) => (g.status === 'fulfilled' ? [g.value] : []));
    };
    let source: Sample['source'] = 'pool';
    let probe: string | null = null;
    let got = await read(manager.pool.ready.slice(0, 3));
    try {
      if (!got.length) {
        source = 'probe';
        probe = newId();
        await provider.createSandbox(probe, ['node1'], this.deps.serverLimits);
        await new Promise((r) => setTimeout(r, this.deps.settleMs ?? SETTLE_MS));
        got = await read([probe]);
        if (!got.length) throw new Error('the probe engine did not report its memory');
      }
      const disk = got.map((g) => nodeDiskBytes(stateDir, g.id, 'node1')).filter((x): x is number => x !== null);
      this.sample = {
        at: Date.now(), source, nodes: got.length,
        idleMemoryBytes: median(got.map((g) => g.mem)), idleDiskBytes: disk.length ? median(disk) : null,
      };
      this.deps.log.info({ ...this.sample, memory: got.map((g) => g.mem) }, 'measured an idle learner engine');
      return this.sample;
    } finally {
      if (probe) await provider.removeSandbox(probe);
    }
  }

  /** Single-node sandboxes that still fit beside what runs, from the last sample; unbounded before any sample. */
  roomFor(): number {
    if (!this.sample) return Infinity;
    const mem = hostMemory();
    return Math.floor(Math.max(0, mem.available - reserveFor(mem.total)) / this.sample.idleMemoryBytes) + this.deps.manager.pool.ready.length;
  }

  async forWorkshop(w: Workshop, seated: number, refresh = false) {
    const s = await this.measure(refresh);
    const { manager, stateDir, serverLimits, maxSandboxes } = this.deps;
    const mem = hostMemory();
    const reserve = reserveFor(mem.total);
    const nodes = w.nodesPerLearner;
    // Warm single-node engines become learners' sandboxes: their memory is already spent, not extra.
    const pooled = nodes === 1 ? manager.pool.ready.length : 0;
    const diskFree = freeDisk(join(stateDir));
    const byMemory = Math.floor(Math.max(0, mem.available - reserve) / (s.idleMemoryBytes * nodes)) + pooled;
    const byDisk = s.idleDiskBytes ? Math.floor(Math.max(0, diskFree * 0.95) / (s.idleDiskBytes * nodes)) + pooled : null;
    const byConfig = Math.max(0, Math.floor((maxSandboxes - manager.count()) / nodes)) + pooled;
    const more = Math.min(byMemory, byConfig, byDisk ?? Infinity);
    return {
      measuredAt: new Date(s.at).toISOString(),
      sample: { source: s.source, engines: s.nodes, idleMemoryBytes: s.idleMemoryBytes, idleDiskBytes: s.idleDiskBytes },
      host: { cpus: availableParallelism(), memoryTotalBytes: mem.total, memoryAvailableBytes: mem.available, reserveBytes: reserve, diskFreeBytes: diskFree },
      shape: { nodesPerLearner: nodes, limits: w.limits, diskBytesPerNode: serverLimits.diskBytes },
      now: { sandboxes: manager.count(), poolReady: manager.pool.ready.length, seated },
      fits: {
        idleMemory: byMemory, disk: byDisk, serverCap: byConfig,
        // The worst case: every learner node at its full memory limit at once.
        memoryLimit: Math.floor(Math.max(0, mem.total - reserve) / (w.limits.memoryBytes * nodes)),
      },
      more,
      holds: seated + more,
      enough: seated + more >= w.capacity,
    };
  }
}

// How many learner sandboxes of a workshop's shape this host can hold, from measurements: what an idle
// learner engine really uses (read from its cgroup through the engine's stats), what the host has left
// (MemAvailable, free disk where nodes' storage goes: the provider's pool, else the state folder) and the
// server's own cap.
import { availableParallelism } from 'node:os';
import { newId } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { Limits } from '../engine/node-spec.ts';
import type { MachineResources, SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { Workshop } from './db.ts';
import { freeDisk, hostMemory } from './host.ts';

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

/** Memory of the machines holding nodes: this host's, or the machines' summed. */
export function memoryOf(machines: MachineResources[] | null): { total: number; available: number } {
  if (!machines) return hostMemory();
  return { total: machines.reduce((a, m) => a + m.memoryTotal, 0), available: machines.reduce((a, m) => a + m.memoryAvailable, 0) };
}

export type HostFigures = { cpus: number; memory: { total: number; available: number }; diskFree: number; machines: MachineResources[] | null };

/**
 * What the machines holding learner nodes have: this host's own figures (`diskFreeHere`: free space where nodes'
 * storage goes on this host, measured by the caller), or, where the provider names other
 * machines (a remote Incus, the members of a cluster), their sum. A sum is an upper bound: a session's nodes
 * all sit on one member, so room split across members fits fewer multi-node sessions than it says.
 */
export function hostFigures(machines: MachineResources[] | null, diskFreeHere: number): HostFigures {
  if (!machines) return { cpus: availableParallelism(), memory: hostMemory(), diskFree: diskFreeHere, machines: null };
  const sum = (f: (m: MachineResources) => number) => machines.reduce((a, m) => a + f(m), 0);
  return {
    cpus: sum((m) => m.cpus),
    memory: memoryOf(machines),
    // A machine that did not say how much room its pool has counts as none, not as unbounded.
    diskFree: sum((m) => m.diskFree ?? 0),
    machines,
  };
}

export class CapacityMeter {
  deps: CapacityDeps;
  sample: Sample | null = null;
  running: Promise<Sample> | null = null;
  /** The machines' figures when nodes run on other machines (the last read), for roomFor, which cannot wait. */
  machines: MachineResources[] | null = null;

  constructor(deps: CapacityDeps) {
    this.deps = deps;
  }

  /** An idle engine's footprint: from up to three warm pool engines, else from one probe started for the purpose. */
  async measure(refresh = false): Promise<Sample> {
    if (!refresh && this.sample && Date.now() - this.sample.at < SAMPLE_TTL_MS) return this.sample;
    this.running ??= this.take().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async take(): Promise<Sample> {
    const { provider, manager } = this.deps;
    const nodeMemory = provider.nodeMemory?.bind(provider);
    if (!nodeMemory)
      throw new ApiError(501, 'NOT_MEASURABLE', "This server's sandbox provider cannot report an engine's memory use, so its capacity cannot be measured.");
    // An engine of the pool that is about to be ready beats starting a probe beside it.
    for (let waited = 0; !manager.poolStatus().ready && manager.poolStatus().starting > 0 && waited < 30_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const read = async (ids: string[]) => {
      // A pool engine may be handed to a learner (or trimmed) while it is read: keep the ones that answered.
      const got = await Promise.allSettled(ids.map(async (id) => ({ id, mem: await nodeMemory(id, 'node1') })));
      return got.flatMap((g) => (g.status === 'fulfilled' ? [g.value] : []));
    };
    let source: Sample['source'] = 'pool';
    let probe: string | null = null;
    let got = await read(manager.readyPoolIds(3));
    try {
      if (!got.length) {
        source = 'probe';
        probe = newId();
        await provider.createSandbox(probe, ['node1'], this.deps.serverLimits);
        await new Promise((r) => setTimeout(r, this.deps.settleMs ?? SETTLE_MS));
        got = await read([probe]);
        if (!got.length) throw new Error('the probe engine did not report its memory');
      }
      const measured = await Promise.allSettled(got.map(async (g) => (await provider.nodeDiskBytes?.(g.id, 'node1')) ?? null));
      const disk = measured.flatMap((m) => (m.status === 'fulfilled' && m.value !== null ? [m.value] : []));
      this.sample = {
        at: Date.now(),
        source,
        nodes: got.length,
        idleMemoryBytes: median(got.map((g) => g.mem)),
        idleDiskBytes: disk.length ? median(disk) : null,
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
    const mem = memoryOf(this.machines);
    return Math.floor(Math.max(0, mem.available - reserveFor(mem.total)) / this.sample.idleMemoryBytes) + this.deps.manager.poolStatus().ready;
  }

  async forWorkshop(w: Workshop, seated: number, refresh = false) {
    const s = await this.measure(refresh);
    const { manager, stateDir, serverLimits, maxSandboxes } = this.deps;
    this.machines = (await this.deps.provider.machines?.()) ?? null;
    // Nodes here: the provider's own pool where it has one (a local Incus), else the state folder's file system.
    const diskHere = this.machines ? 0 : ((await this.deps.provider.freeDiskBytes?.()) ?? (await freeDisk(stateDir)));
    const host = hostFigures(this.machines, diskHere);
    const { memory: mem, diskFree } = host;
    const poolReady = manager.poolStatus().ready;
    const f = fits({
      sample: s,
      memoryTotal: mem.total,
      memoryAvailable: mem.available,
      diskFree,
      nodes: w.nodesPerLearner,
      memoryLimit: w.limits.memoryBytes,
      poolReady,
      sandboxes: manager.count(),
      maxSandboxes,
    });
    return {
      measuredAt: new Date(s.at).toISOString(),
      sample: { source: s.source, engines: s.nodes, idleMemoryBytes: s.idleMemoryBytes, idleDiskBytes: s.idleDiskBytes },
      host: {
        cpus: host.cpus,
        memoryTotalBytes: mem.total,
        memoryAvailableBytes: mem.available,
        reserveBytes: f.reserve,
        diskFreeBytes: diskFree,
        // Each machine's own figures where nodes run elsewhere (a remote Incus, each cluster member); the sums above.
        ...(host.machines
          ? {
              machines: host.machines.map((m) => ({
                name: m.name,
                cpus: m.cpus,
                memoryTotalBytes: m.memoryTotal,
                memoryAvailableBytes: m.memoryAvailable,
                diskFreeBytes: m.diskFree,
              })),
            }
          : {}),
      },
      shape: { nodesPerLearner: w.nodesPerLearner, limits: w.limits, diskBytesPerNode: serverLimits.diskBytes },
      now: { sandboxes: manager.count(), poolReady, seated },
      fits: f.fits,
      more: f.more,
      holds: seated + f.more,
      enough: seated + f.more >= w.capacity,
    };
  }
}

export type FitInput = {
  sample: Pick<Sample, 'idleMemoryBytes' | 'idleDiskBytes'>;
  memoryTotal: number;
  memoryAvailable: number;
  diskFree: number;
  nodes: number;
  /** The workshop's per-node memory limit, for the worst case. */
  memoryLimit: number;
  poolReady: number;
  sandboxes: number;
  maxSandboxes: number;
};

/** How many more learners fit, by each bound, from measured figures (pure: the tests feed it numbers). */
export function fits(i: FitInput) {
  const reserve = reserveFor(i.memoryTotal);
  // Warm single-node engines become learners' sandboxes: their memory is already spent, not extra.
  const pooled = i.nodes === 1 ? i.poolReady : 0;
  const byMemory = Math.floor(Math.max(0, i.memoryAvailable - reserve) / (i.sample.idleMemoryBytes * i.nodes)) + pooled;
  const byDisk = i.sample.idleDiskBytes ? Math.floor(Math.max(0, i.diskFree * 0.95) / (i.sample.idleDiskBytes * i.nodes)) + pooled : null;
  const byConfig = Math.max(0, Math.floor((i.maxSandboxes - i.sandboxes) / i.nodes)) + pooled;
  return {
    reserve,
    fits: {
      idleMemory: byMemory,
      disk: byDisk,
      serverCap: byConfig,
      // The worst case: every learner node at its full memory limit at once.
      memoryLimit: Math.floor(Math.max(0, i.memoryTotal - reserve) / (i.memoryLimit * i.nodes)),
    },
    more: Math.min(byMemory, byConfig, byDisk ?? Infinity),
  };
}

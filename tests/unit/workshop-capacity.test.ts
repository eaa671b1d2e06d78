// The arithmetic behind "how many more learners fit" and "how many warm engines to keep", fed with numbers.
import test from 'ava';
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { SandboxProvider } from '../../sandbox-server/engine/provider.ts';
import type { SandboxManager } from '../../sandbox-server/sandboxes/manager.ts';
import { CapacityMeter, fits, type FitInput } from '../../sandbox-server/workshops/capacity.ts';
import type { Workshop } from '../../sandbox-server/workshops/db.ts';
import { ADMIN_TOKEN, assertError, buildApp } from '../helpers/app-harness.ts';
import { heldGate } from '../helpers/fake-provider.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const base: FitInput = {
  sample: { idleMemoryBytes: 40 * MiB, idleDiskBytes: null },
  memoryTotal: 24 * GiB,
  memoryAvailable: 20 * GiB,
  diskFree: 100 * GiB,
  nodes: 1,
  memoryLimit: 2 * GiB,
  poolReady: 0,
  sandboxes: 0,
  maxSandboxes: 1000,
};

test('memory: what is available above the reserve (a tenth of memory, at least 1 GiB), per idle engine', (t) => {
  const f = fits(base);
  t.is(f.reserve, Math.round(2.4 * GiB));
  // (20 GiB − 2.4 GiB) / 40 MiB = 450.56
  t.is(f.fits.idleMemory, 450);
  t.is(f.more, 450);
  t.is(fits({ ...base, memoryTotal: 4 * GiB, memoryAvailable: 2 * GiB }).reserve, GiB, 'the 1 GiB floor');
  t.is(fits({ ...base, memoryAvailable: GiB }).fits.idleMemory, 0, 'never negative when less than the reserve is left');
  t.is(fits({ ...base, nodes: 3 }).fits.idleMemory, 150, 'three nodes per learner cost three engines');
});

test('the smallest bound wins: server cap, disk, memory; warm engines count as already paid for', (t) => {
  t.like(fits({ ...base, maxSandboxes: 100, sandboxes: 30 }), { more: 70, fits: { serverCap: 70 } });
  t.like(fits({ ...base, maxSandboxes: 100, sandboxes: 30, nodes: 2 }), { more: 35, fits: { serverCap: 35 } });
  // 10 warm engines are part of the 30 sandboxes and become learners' sandboxes without new memory.
  t.like(fits({ ...base, maxSandboxes: 100, sandboxes: 30, poolReady: 10 }), { more: 80, fits: { serverCap: 80, idleMemory: 460 } });
  t.like(fits({ ...base, nodes: 2, poolReady: 10 }), { fits: { idleMemory: 225 } }, 'warm engines have one node: no help to two-node learners');
  const disk = fits({ ...base, sample: { idleMemoryBytes: 40 * MiB, idleDiskBytes: 1 * GiB }, diskFree: 21 * GiB });
  t.is(disk.fits.disk, 19, '95 % of the free disk, per engine');
  t.is(disk.more, 19);
  t.is(fits(base).fits.disk, null, 'no per-node disks on this host: no disk bound');
});

test('worst case: every node at its full memory limit', (t) => {
  // (24 − 2.4) GiB / 2 GiB = 10.8
  t.is(fits(base).fits.memoryLimit, 10);
  t.is(fits({ ...base, memoryLimit: 512 * MiB, nodes: 2 }).fits.memoryLimit, 21);
});

test('the warm pool grows for a workshop from its prewarm lead, by its empty seats, bounded by measured room', async (t) => {
  const h = buildApp({ BERTH_POOL_SIZE: '1', BERTH_WORKSHOP_PREWARM_MIN: '15' });
  // Held creations: the pool's own engines stay "starting", so only the arithmetic is observed.
  h.provider.gate = heldGate().promise;
  const inMin = (m: number) => new Date(h.clock.t + m * 60_000).toISOString();
  const w = await h.workshop({ startsAt: inMin(60), endsAt: inMin(120), capacity: 20, expectedLearners: 12 });
  await h.workshop({ startsAt: inMin(10), endsAt: inMin(120), capacity: 8, nodesPerLearner: 2 });
  t.deepEqual(h.service.poolTarget(), { target: 1, extra: 0 }, 'an hour away, and two-node learners get cold sandboxes');
  h.clock.advance(45 * 60_000);
  t.deepEqual(h.service.poolTarget(), { target: 13, extra: 12 }, 'fifteen minutes before the start');
  t.is((await h.request(`/api/workshops/${w.id}/prewarm`, { method: 'POST', token: ADMIN_TOKEN, json: { expectedLearners: 30 } })).status, 200);
  t.deepEqual(h.service.poolTarget(), { target: 21, extra: 20 }, 'expected learners never exceed the capacity');
  // Once an idle engine has been measured, the room left on the host bounds the growth.
  h.capacity.sample = { at: Date.now(), source: 'probe', nodes: 1, idleMemoryBytes: 1e15, idleDiskBytes: null };
  t.deepEqual(h.service.poolTarget(), { target: 1, extra: 20 });
  h.clock.advance(75 * 60_000);
  t.deepEqual(h.service.poolTarget(), { target: 1, extra: 0 }, 'ended workshops hold no seats');
});

test("free disk is the provider's (an Incus pool) where it says, else the state folder's; node disks are read without blocking", async (t) => {
  const manager = {
    poolStatus: () => ({ target: 3, ready: 3, starting: 0 }),
    readyPoolIds: () => ['p1', 'p2', 'p3'],
    count: () => 3,
  } as unknown as SandboxManager;
  const disks: Record<string, number> = { p1: 10 * MiB, p3: 30 * MiB };
  const nodeDiskBytes = async (id: string) => {
    if (!disks[id]) throw new Error('handed to a learner meanwhile');
    return disks[id];
  };
  const provider = { nodeMemory: async () => 40 * MiB, nodeDiskBytes } as unknown as SandboxProvider;
  const limits = { memoryBytes: GiB, nanoCpus: 1e9, pids: 512, diskBytes: 4 * GiB };
  const meter = (p: SandboxProvider) =>
    new CapacityMeter({ provider: p, manager, stateDir: tmpdir(), serverLimits: limits, maxSandboxes: 100, log: { info: () => {} } });
  const w = { nodesPerLearner: 1, limits, capacity: 10 } as unknown as Workshop;
  const free = () => {
    const fs = statfsSync(tmpdir());
    return fs.bavail * fs.bsize;
  };
  const before = free();
  const plain = await meter(provider).forWorkshop(w, 0);
  const after = free();
  t.is(plain.sample.idleDiskBytes, 30 * MiB, 'the median of the disks that answered');
  // Other writers on a shared machine move free space meanwhile: within a gigabyte of what statfs says around the call.
  t.true(
    plain.host.diskFreeBytes >= Math.min(before, after) - GiB && plain.host.diskFreeBytes <= Math.max(before, after) + GiB,
    "no pool: the state folder's file system",
  );
  const pooled = await meter({ ...provider, freeDiskBytes: async () => 3 * GiB } as SandboxProvider).forWorkshop(w, 0);
  t.is(pooled.host.diskFreeBytes, 3 * GiB);
  // 3 GiB × 0.95 / 30 MiB = 97.28, plus the 3 warm engines.
  t.is(pooled.fits.disk, 100);
});

test('the capacity route with a state folder that does not exist yet: the free disk of the file system it would be made on', async (t) => {
  // buildApp's state folder is never created (nothing is written to it).
  const h = buildApp();
  const w = await h.workshop();
  h.capacity.sample = { at: Date.now(), source: 'probe', nodes: 1, idleMemoryBytes: 40 * MiB, idleDiskBytes: null };
  const r = await h.request(`/api/workshops/${w.id}/capacity`, { token: ADMIN_TOKEN });
  t.is(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { host: { diskFreeBytes: number } };
  const fs = statfsSync(tmpdir());
  // The same file system as its nearest existing folder (the temp folder), give or take what others wrote meanwhile.
  t.true(Math.abs(body.host.diskFreeBytes - fs.bavail * fs.bsize) < 512 * MiB, String(body.host.diskFreeBytes));
});

test('the capacity route on a provider that cannot report memory use: a JSON error that says so, not a 500', async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  t.false('nodeMemory' in h.provider);
  const e = await assertError(t, await h.request(`/api/workshops/${w.id}/capacity`, { token: ADMIN_TOKEN }), 501, 'NOT_MEASURABLE');
  t.regex(e.message, /cannot report/);
});

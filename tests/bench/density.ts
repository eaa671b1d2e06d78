// 2. Density: idle sandboxes started one after another until the ceiling, or until creation latency's p95
// doubles; memory per idle sandbox from cgroup accounting and host memory used; then a small lesson
// workload (pull, run, build) in several sandboxes at once against the same workload in one.
import { cpus } from 'node:os';
import type { Created } from '../helpers/server.ts';
import { exec } from '../helpers/server.ts';
import { type Bench, type Ctx, benchServer, closeServer, create } from './lib/context.ts';
import { type CgroupMemory, cgroupCpuOfPid, cgroupMemoryOfPid, containerMemory, hostMemory } from './lib/host.ts';
import { mib, ms, ratio } from './lib/report.ts';
import { round, summarize } from './lib/stats.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const MIN_FREE = 3 * 1024 ** 3; // never push the shared machine below this much available memory

// What a first lesson has a learner do: pull an image, run it and reach it, build on it.
const WORKLOAD = `set -e
t() { date +%s%N; }
a=$(t); docker pull -q nginx >/dev/null; b=$(t)
docker run -d --name web -p 8080:80 nginx >/dev/null
for i in $(seq 1 300); do curl -fs -o /dev/null http://localhost:8080/ && break; sleep 0.1; done
curl -fs http://localhost:8080/ | grep -q 'Welcome to nginx'
docker rm -f web >/dev/null; c=$(t)
mkdir -p ~/site && cd ~/site && echo '<h1>mine</h1>' > index.html
printf 'FROM nginx\\nCOPY index.html /usr/share/nginx/html/\\n' > Dockerfile
docker build -q -t my-site . >/dev/null; d=$(t)
echo "pull=$(( (b - a) / 1000000 )) run=$(( (c - b) / 1000000 )) build=$(( (d - c) / 1000000 ))"`;

type WorkloadRun = { totalMs: number; pullMs: number; runMs: number; buildMs: number };

async function workload(b: Bench, c: Created): Promise<WorkloadRun> {
  const t0 = performance.now();
  const r = await exec(b.s, c, WORKLOAD, { timeoutMs: 600_000 });
  const totalMs = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`the lesson workload failed in ${c.id} (${r.exitCode}): ${r.stderr.slice(-500)}`);
  const part = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(r.stdout)?.[1] ?? NaN);
  return { totalMs, pullMs: part('pull'), runMs: part('run'), buildMs: part('build') };
}

/** The floor: an idle busybox container on the same engine, charged the same way. */
async function idleFloor(ctx: Ctx): Promise<CgroupMemory> {
  const name = `berth-bench-idle-${process.pid}`;
  await ctx.docker(['run', '-d', '--name', name, 'busybox', 'sleep', '600']);
  try {
    await sleep(2000);
    return await containerMemory(ctx.docker, name);
  } finally {
    await ctx.docker(['rm', '-f', name]).catch(() => {});
  }
}

export async function density(ctx: Ctx) {
  const { ceiling, workload: parallel } = ctx.flags;
  const window = Math.max(3, Math.min(10, Math.floor(ceiling / 4)));
  const floor = await idleFloor(ctx);
  const before = hostMemory();
  const b = await benchServer(ctx, { BERTH_POOL_SIZE: '0', BERTH_MAX_SANDBOXES: String(ceiling + 2) });
  const sessions: Created[] = [];
  const latencies: number[] = [];
  let stopReason = `reached the ceiling of ${ceiling}`;
  try {
    ctx.log(`density: starting up to ${ceiling} idle sandboxes (stop when the p95 of the last ${window} creations doubles)`);
    for (let i = 0; i < ceiling; i++) {
      if (hostMemory().available < MIN_FREE) {
        stopReason = `host memory available fell below ${mib(MIN_FREE)}`;
        break;
      }
      const t0 = performance.now();
      try {
        sessions.push(await create(b));
      } catch (err) {
        stopReason = `creation ${i + 1} failed: ${(err as Error).message.slice(0, 200)}`;
        break;
      }
      latencies.push(performance.now() - t0);
      if ((i + 1) % 10 === 0) ctx.log(`  ${i + 1} sandboxes, last creation ${ms(latencies[i])}`);
      if (latencies.length >= 2 * window) {
        const first = summarize(latencies.slice(0, window)).p95;
        const last = summarize(latencies.slice(-window)).p95;
        if (last > 2 * first) {
          stopReason = `creation p95 doubled (${ms(first)} → ${ms(last)})`;
          break;
        }
      }
    }
    const count = sessions.length;
    ctx.log(`density: ${count} sandboxes (${stopReason}); letting them settle`);
    await sleep(count > 10 ? 20_000 : 5000);
    const pids: number[] = [];
    for (const c of sessions) pids.push(await ctx.provider.nodePid(c.id, 'node1'));
    const mem: CgroupMemory[] = pids.map(cgroupMemoryOfPid);
    const after = hostMemory();
    // What idle sandboxes cost the CPU: their cgroups' CPU time over a quiet window, in cores.
    const cpuWindowMs = count > 10 ? 10_000 : 3000;
    const cpu0 = pids.map(cgroupCpuOfPid);
    await sleep(cpuWindowMs);
    const idleCores = pids.map(cgroupCpuOfPid).reduce((sum, v, i) => sum + v - cpu0[i], 0) / (cpuWindowMs * 1e6);
    // With the ceiling below the target, the memory left says how many more would fit (keeping MIN_FREE spare).
    const projected = count + Math.max(0, Math.floor((after.available - MIN_FREE) / Math.max(1, (after.used - before.used) / Math.max(1, count))));
    const ws = summarize(mem.map((m) => m.workingSet));
    const usage = summarize(mem.map((m) => m.usage));
    const hostPer = (after.used - before.used) / Math.max(1, count);
    const lat = summarize(latencies);
    const firstWindow = summarize(latencies.slice(0, window));

    const single = sessions[0];
    const group = sessions.slice(1, 1 + parallel);
    let one: WorkloadRun | null = null;
    let many: WorkloadRun[] = [];
    let wallMany = NaN;
    if (single && group.length) {
      ctx.log(`density: lesson workload in 1 sandbox, then in ${group.length} at once`);
      one = await workload(b, single);
      const t0 = performance.now();
      many = await Promise.all(group.map((c) => workload(b, c)));
      wallMany = performance.now() - t0;
    }
    const manyTotal = summarize(many.map((r) => r.totalMs));

    ctx.data.density = {
      count,
      stopReason,
      window,
      creationMs: lat,
      creationSamplesMs: latencies.map((x) => round(x)),
      memoryPerSandbox: { workingSet: ws, usage },
      floorBusybox: floor,
      host: { before, after, usedPerSandbox: hostPer },
      idleCores,
      projectedByMemory: projected,
      workload: { one, many, wallManyMs: wallMany },
    };
    const floorIs = 'an idle `busybox sleep` container, same engine and accounting';
    ctx.rows.push(
      {
        section: 'density',
        what: `idle sandboxes started (${stopReason})`,
        berth: String(count),
        baseline: String(ceiling),
        baselineIs: 'the ceiling (--ceiling)',
        ratio: ratio(count, ceiling),
        // Only a stop below the target says the target was missed; a lower ceiling says nothing either way.
        ...(count >= 100 || count < ceiling ? { target: '≥ 100 on 24 GiB', met: count >= 100 } : {}),
      },
      {
        section: 'density',
        what: `creation latency p50 / p95 over ${count}`,
        berth: `${ms(lat.p50)} / ${ms(lat.p95)}`,
        baseline: ms(firstWindow.p95),
        baselineIs: `p95 of the first ${window} creations`,
        ratio: ratio(lat.p95, firstWindow.p95),
      },
      {
        section: 'density',
        what: 'memory per idle sandbox (cgroup working set, p50)',
        berth: mib(ws.p50),
        baseline: mib(floor.workingSet),
        baselineIs: floorIs,
        ratio: ratio(ws.p50, floor.workingSet),
      },
      {
        section: 'density',
        what: 'memory per idle sandbox (cgroup usage incl. page cache, p50 / max)',
        berth: `${mib(usage.p50)} / ${mib(usage.max)}`,
        baseline: mib(floor.usage),
        baselineIs: floorIs,
        ratio: ratio(usage.p50, floor.usage),
      },
      {
        section: 'density',
        what: `host memory used, per sandbox (${count} sandboxes: ${mib(before.used)} → ${mib(after.used)})`,
        berth: mib(hostPer),
        baseline: mib(ws.p50),
        baselineIs: 'cgroup working set per sandbox (p50)',
        ratio: ratio(hostPer, ws.p50),
      },
      {
        section: 'density',
        what: 'idle sandboxes that would fit in host memory (projected from host memory used per sandbox)',
        berth: String(projected),
        baseline: mib(after.available),
        baselineIs: `host memory still available, less ${mib(MIN_FREE)} spare`,
        ratio: null,
        target: '≥ 100 on 24 GiB',
        met: projected >= 100,
      },
      {
        section: 'density',
        what: `CPU used by ${count} idle sandboxes together`,
        berth: `${round(idleCores * 100)}% of a core`,
        baseline: `${cpus().length} cores`,
        baselineIs: 'the host',
        ratio: ratio(idleCores, cpus().length),
      },
    );
    if (one && many.length) {
      ctx.rows.push(
        {
          section: 'density',
          what: `lesson workload (pull nginx, run + curl, build), ${many.length} at once: p50 / slowest`,
          berth: `${ms(manyTotal.p50)} / ${ms(manyTotal.max)}`,
          baseline: ms(one.totalMs),
          baselineIs: 'the same workload in 1 sandbox alone',
          ratio: ratio(manyTotal.max, one.totalMs),
        },
        {
          section: 'density',
          what: `  of which \`docker pull nginx\`, ${many.length} at once (slowest)`,
          berth: ms(Math.max(...many.map((r) => r.pullMs))),
          baseline: ms(one.pullMs),
          baselineIs: 'the same pull in 1 sandbox alone',
          ratio: ratio(Math.max(...many.map((r) => r.pullMs)), one.pullMs),
        },
      );
    }
  } finally {
    ctx.log(`density: removing ${b.live.size} sandboxes`);
    await closeServer(b, ctx);
  }
}

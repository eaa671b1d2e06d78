// What every benchmark section gets: flags, the host engine, a log, where to put rows and notes, and
// sessions that are always removed again, however a section ends.
import { readFileSync, rmSync } from 'node:fs';
import { createSession, startServer, type Created, type TestServer } from '../../helpers/server.ts';
import type { Flags } from './flags.ts';
import type { hostDocker } from './host.ts';
import type { ProviderNodes } from '../../helpers/provider-nodes.ts';
import type { Row } from './report.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export type Ctx = {
  flags: Flags;
  engine: string;
  docker: ReturnType<typeof hostDocker>;
  provider: ProviderNodes;
  log: (m: string) => void;
  rows: Row[];
  notes: string[];
  /** Raw figures per section, for the JSON file. */
  data: Record<string, unknown>;
};

export type Bench = { s: TestServer; live: Map<string, Created> };

/** A Berth server of the benchmark's own (own state folder, the run's provider), with its sessions tracked. */
export async function benchServer(ctx: Ctx, extra: Record<string, string>): Promise<Bench> {
  const s = await startServer({ ...ctx.provider.settings, ...extra });
  return { s, live: new Map() };
}

export async function create(b: Bench, body: object = {}): Promise<Created> {
  const c = await createSession(b.s, body);
  b.live.set(c.id, c);
  return c;
}

export async function remove(b: Bench, c: Created) {
  const r = await b.s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  if (r.status !== 204 && r.status !== 404) throw new Error(`removing ${c.id}: ${r.status} ${await r.text()}`);
  b.live.delete(c.id);
}

/** Removes the sessions still open (a few at a time), stops the server, then sweeps anything left behind. */
export async function closeServer(b: Bench, ctx: Ctx) {
  const log = ctx.log;
  const left = [...b.live.values()];
  for (let i = 0; i < left.length; i += 4) {
    await Promise.all(left.slice(i, i + 4).map((c) => remove(b, c).catch((err) => log(`cleanup: ${(err as Error).message}`))));
  }
  await b.s.stop();
  const swept = await ctx.provider.sweep(b.s.stateDir);
  if (swept) log(`cleanup: removed ${swept} sandboxes the server left behind`);
  // Every sandbox (and so every node disk) of this server is gone now: its state folder can go too.
  if (!readFileSync('/proc/mounts', 'utf8').includes(` ${b.s.stateDir}/`)) rmSync(b.s.stateDir, { recursive: true, force: true });
  else log(`cleanup: ${b.s.stateDir} still has mounts; left in place`);
}

/** Waits until the warm pool is full again and nothing is starting, so each warm run finds it as a learner would. */
export async function poolFull(b: Bench, size: number, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = await (await b.s.api('/metrics')).text();
    const ready = Number(/berth_sandboxes\{state="pool-ready"\} (\d+)/.exec(m)?.[1] ?? -1);
    const starting = Number(/berth_sandboxes\{state="starting"\} (\d+)/.exec(m)?.[1] ?? -1);
    if (ready >= size && starting === 0) return;
    await sleep(200);
  }
  throw new Error(`the warm pool did not reach ${size} within ${timeoutMs / 1000} s`);
}

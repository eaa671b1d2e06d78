// The two engine operations workshops need beyond the SandboxProvider interface: tighter limits on a node
// that came from the warm pool, and what an idle node really uses. They go through the provider's own
// containers (engine/local-docker.ts) or its own methods (engine/incus/provider.ts); a provider without either
// cannot apply per-workshop limits or measure.
import type Docker from 'dockerode';
import { readFileSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { engineError } from '../engine/docker.ts';
import { containerName } from '../engine/node-spec.ts';
import type { WorkshopLimits } from './db.ts';

type DockerNodes = { container(sandboxId: string, node: string): Docker.Container };
/** A provider that does both itself (engine/incus/provider.ts). */
type NodeControl = {
  updateLimits(sandboxId: string, node: string, l: WorkshopLimits): Promise<void>;
  nodeMemory(sandboxId: string, node: string): Promise<number>;
};
export type NodeAccess = DockerNodes | NodeControl;

const isControl = (p: object): p is NodeControl => typeof (p as Partial<NodeControl>).updateLimits === 'function' && typeof (p as Partial<NodeControl>).nodeMemory === 'function';
export const hasNodeAccess = (p: object): p is NodeAccess => isControl(p) || typeof (p as Partial<DockerNodes>).container === 'function';

/** Memory, CPU and process limits of a running node can change in place (cgroup writes); disk size cannot. */
export async function applyLimits(p: NodeAccess, sandboxId: string, nodes: string[], l: WorkshopLimits) {
  if (isControl(p)) { await Promise.all(nodes.map((n) => p.updateLimits(sandboxId, n, l))); return; }
  try {
    await Promise.all(nodes.map((n) => p.container(sandboxId, n).update({
      Memory: l.memoryBytes, MemorySwap: l.memoryBytes, NanoCpus: l.nanoCpus, PidsLimit: l.pids,
    })));
  } catch (err) {
    throw engineError(err, 'Applying the workshop limits');
  }
}

/** Memory a node holds that the host cannot reclaim: usage minus inactive page cache (what `docker stats` shows). */
export async function nodeMemory(p: NodeAccess, sandboxId: string, node: string): Promise<number> {
  if (isControl(p)) return p.nodeMemory(sandboxId, node);
  const s = await p.container(sandboxId, node).stats({ stream: false });
  const m = s.memory_stats;
  const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
  return Math.max(0, m.usage - inactive);
}

/** Bytes a node's loop disk really occupies on the host (the image file is sparse). */
export function nodeDiskBytes(stateDir: string, sandboxId: string, node: string): number | null {
  try {
    return statSync(join(stateDir, 'disks', `${containerName(sandboxId, node)}.img`)).blocks * 512;
  } catch {
    return null; // no per-node disks on this host: the engine's storage lives in a volume
  }
}

export function hostMemory(): { total: number; available: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

export function freeDisk(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

// What the host itself has left, for the capacity estimate (capacity.ts). Node figures come from the
// provider (engine/provider.ts: nodeMemory, nodeDiskBytes).
import { readFileSync, statfsSync } from 'node:fs';

export function hostMemory(): { total: number; available: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

export function freeDisk(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

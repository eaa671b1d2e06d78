// What the host itself has left, for the capacity estimate (capacity.ts). Node figures come from the
// provider (engine/provider.ts: nodeMemory, nodeDiskBytes, freeDiskBytes).
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';

export function hostMemory(): { total: number; available: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

export async function freeDisk(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

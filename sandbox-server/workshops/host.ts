// What the host itself has left, for the capacity estimate (capacity.ts). Node figures come from the
// provider (engine/provider.ts: nodeMemory, nodeDiskBytes, freeDiskBytes).
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export function hostMemory(): { total: number; available: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

/** Free bytes on the file system that holds `path`; for a folder not made yet (a state folder before the first
 *  node disk), the one its nearest existing parent is on, where it will be made. */
export async function freeDisk(path: string): Promise<number> {
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || p === dirname(p)) throw err;
    }
  }
}

// Socket buffer memory per node. On cgroup v1 the kernel does not charge TCP buffers to a cgroup's memory
// limit, so a learner filling loopback connections would take host memory outside every limit. The v1
// memory controller can cap them (memory.kmem.tcp.limit_in_bytes), but Docker 20.10 with runc 1.1 accepts
// KernelMemoryTCP and never writes it (measured), so the server writes it itself, right after the node
// starts and before any learner command runs. On cgroup v2 socket memory is charged to memory.max already.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Socket buffer memory a node may hold: an eighth of its memory, between 32 and 256 MiB. */
export const tcpMemoryCap = (memoryBytes: number) => Math.min(256 * 1024 ** 2, Math.max(32 * 1024 ** 2, Math.floor(memoryBytes / 8)));

/** The v1 memory cgroup folder of a process, when this host has one (the engine runs on this machine). */
export function memoryCgroupOf(pid: number): string | null {
  if (!pid || !existsSync(`/proc/${pid}/cgroup`)) return null;
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes('memory')) {
      const dir = `/sys/fs/cgroup/memory${path}`;
      return existsSync(`${dir}/memory.kmem.tcp.limit_in_bytes`) ? dir : null;
    }
  }
  return null;
}

/** Caps the socket buffers of the node whose init is `pid`; false where there is nothing to cap (v2, remote). */
export function capTcpMemory(pid: number, memoryBytes: number): boolean {
  const dir = memoryCgroupOf(pid);
  if (!dir) return false;
  writeFileSync(`${dir}/memory.kmem.tcp.limit_in_bytes`, String(tcpMemoryCap(memoryBytes)));
  return true;
}

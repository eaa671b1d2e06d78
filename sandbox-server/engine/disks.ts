// Per-node disks: a sparse file with its own ext4, loop-mounted on the host and bound over the learner's
// home (which holds the engine's storage). A learner can fill it, and its inodes, but never the host disk.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statfsSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiError } from '../errors.ts';

const run = promisify(execFile);

// Node disks are sparse: 100 nodes of 8 GiB would never fit if each were reserved in full. Each node is
// counted as needing up to `reservePerNode` of real blocks, less what it already holds, and the host keeps
// HOST_FLOOR free besides. A node is refused (HOST_DISK_FULL) before anything is made when that does not fit.
export const HOST_FLOOR = 2 * 1024 ** 3;

export class LoopDisks {
  dir: string;
  reservePerNode: number;
  constructor(dir: string, reservePerNode = 1024 ** 3) {
    this.dir = dir;
    this.reservePerNode = reservePerNode;
    mkdirSync(dir, { recursive: true });
  }

  /** Loop disks need root and a local engine that can bind-mount host paths. */
  static usable(engineSocket: string | null): boolean {
    return process.getuid?.() === 0 && !!engineSocket && existsSync(engineSocket) && existsSync('/dev/loop-control');
  }

  paths(name: string) {
    return { image: join(this.dir, `${name}.img`), mount: join(this.dir, name) };
  }

  /** Bytes the host file system can still give, and bytes the live disks may still claim of their reserve. */
  room() {
    const fs = statfsSync(this.dir);
    const free = Number(fs.bavail) * Number(fs.bsize);
    let owed = 0;
    for (const n of this.list()) {
      const st = statSync(this.paths(n).image, { throwIfNoEntry: false });
      if (st) owed += Math.max(0, Math.min(st.size, this.reservePerNode) - st.blocks * 512);
    }
    return { free, owed };
  }

  async create(name: string, bytes: number): Promise<string> {
    const { image, mount } = this.paths(name);
    const { free, owed } = this.room();
    const need = owed + Math.min(bytes, this.reservePerNode) + HOST_FLOOR;
    if (free < need) {
      const gib = (n: number) => (n / 1024 ** 3).toFixed(1);
      throw new ApiError(
        503,
        'HOST_DISK_FULL',
        `This Berth host is short of disk space for another node (${gib(free)} GiB free, ${gib(need)} GiB needed). Try again later.`,
      );
    }
    try {
      writeFileSync(image, '');
      truncateSync(image, bytes);
      // No reserved blocks (the learner may use it all) and lazy init (a sparse 8 GiB file formats in ~50 ms).
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', image]);
      mkdirSync(mount, { recursive: true });
      // discard: blocks the learner frees inside go back to the host (the loop device punches holes).
      await run('mount', ['-o', 'loop,nosuid,nodev,discard', image, mount]);
      rmSync(join(mount, 'lost+found'), { recursive: true, force: true });
      await run('chown', ['1000:1000', mount]);
      return mount;
    } catch (err) {
      await this.remove(name);
      throw err;
    }
  }

  mounted(): Set<string> {
    const out = new Set<string>();
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const target = line.split(' ')[1]?.replace(/\\040/g, ' ');
      if (target?.startsWith(this.dir + '/')) out.add(target);
    }
    return out;
  }

  async remove(name: string) {
    const { image, mount } = this.paths(name);
    if (this.mounted().has(mount)) {
      try {
        await run('umount', [mount]);
      } catch {
        await run('umount', ['-l', mount]).catch(() => {});
      }
    }
    rmSync(mount, { recursive: true, force: true });
    rmSync(image, { force: true });
  }

  /** Bytes a disk really occupies on the host (its image file is sparse); null when there is no such disk. */
  async used(name: string): Promise<number | null> {
    const st = await stat(this.paths(name).image).catch(() => null);
    return st ? st.blocks * 512 : null;
  }

  /** Disk names present on the host, for cleaning up after a crash. */
  list(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.img'))
      .map((f) => f.slice(0, -4));
  }
}

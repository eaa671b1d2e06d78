// Per-node disks: a sparse file with its own ext4, loop-mounted on the host and bound over the learner's
// home (which holds the engine's storage). A learner can fill it, and its inodes, but never the host disk.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class LoopDisks {
  dir: string;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  /** Loop disks need root and a local engine that can bind-mount host paths. */
  static usable(engineSocket: string | null): boolean {
    return process.getuid?.() === 0 && !!engineSocket && existsSync(engineSocket) && existsSync('/dev/loop-control');
  }

  paths(name: string) {
    return { image: join(this.dir, `${name}.img`), mount: join(this.dir, name) };
  }

  async create(name: string, bytes: number): Promise<string> {
    const { image, mount } = this.paths(name);
    try {
      writeFileSync(image, '');
      truncateSync(image, bytes);
      // No reserved blocks (the learner may use it all) and lazy init (a sparse 8 GiB file formats in ~50 ms).
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', image]);
      mkdirSync(mount, { recursive: true });
      await run('mount', ['-o', 'loop,nosuid,nodev', image, mount]);
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
      try { await run('umount', [mount]); } catch { await run('umount', ['-l', mount]).catch(() => {}); }
    }
    rmSync(mount, { recursive: true, force: true });
    rmSync(image, { force: true });
  }

  /** Disk names present on the host, for cleaning up after a crash. */
  list(): string[] {
    return readdirSync(this.dir).filter((f) => f.endsWith('.img')).map((f) => f.slice(0, -4));
  }
}

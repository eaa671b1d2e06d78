// The Incus configuration Berth owns: a btrfs pool on a loop file (copy-on-write instances, per-instance
// root quotas through qgroups) and the `berth` profile every learner node uses. Networks are per session
// and belong to the provider (sandbox-server/engine/incus). Idempotent: an existing pool is kept as it is,
// the profile is rewritten to the same content.
import { spawnSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { IncusError } from './errors.ts';

export const POOL = 'berth';
export const PROFILE = 'berth';
const GiB = 1024 ** 3;
/** Below this the image (≈1 GB unpacked) and a handful of nodes with their Docker data do not fit. */
export const MIN_POOL_BYTES = 8 * GiB;
const MAX_DEFAULT_POOL_BYTES = 200 * GiB;

/** Settings measured to give a rootful Docker 26 with enforced limits inside a user namespace (issue 14). */
export const PROFILE_CONFIG: Record<string, string> = {
  // dockerd needs to create namespaces, mounts and cgroups inside the node.
  'security.nesting': 'true',
  // Each node gets its own 65536-id range: one learner's key quota, inotify and process counts are its own.
  'security.idmap.isolated': 'true',
  // Docker image layers hold device nodes (whiteouts) and xattrs that an unprivileged user may not create;
  // Incus creates the safe ones on the node's behalf.
  'security.syscalls.intercept.mknod': 'true',
  'security.syscalls.intercept.setxattr': 'true',
};

export function incus(args: string[], input?: string) {
  const r = spawnSync('incus', args, { encoding: 'utf8', input, timeout: 120_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() };
}

/** Size for a new pool: BERTH_INCUS_POOL_SIZE (GiB) or half the free space, at most 200 GiB. */
export function poolSize(freeBytes: number, requestedGiB?: number): number {
  const size = requestedGiB ? requestedGiB * GiB : Math.min(MAX_DEFAULT_POOL_BYTES, Math.floor(freeBytes / 2 / GiB) * GiB);
  const usable = requestedGiB ? freeBytes - GiB : freeBytes / 2;
  if (size < MIN_POOL_BYTES || size > usable) {
    const need = requestedGiB ? size + GiB : MIN_POOL_BYTES * 2;
    throw new IncusError(
      'DISK_SHORT',
      `The Incus storage pool needs ${(Math.max(size, MIN_POOL_BYTES) / GiB).toFixed(0)} GiB, but the file system holding /var/lib/incus has ` +
        `${(freeBytes / GiB).toFixed(1)} GiB free; free another ${((need - freeBytes) / GiB).toFixed(1)} GiB` +
        (requestedGiB ? ' or lower BERTH_INCUS_POOL_SIZE.' : ' (Berth uses at most half of the free space) or set BERTH_INCUS_POOL_SIZE (GiB).'),
    );
  }
  return size;
}

export function ensurePool(log: (m: string) => void, env: NodeJS.ProcessEnv = process.env, incusDir = '/var/lib/incus'): { created: boolean; size?: number } {
  if (incus(['storage', 'show', POOL]).ok) return { created: false };
  const fs = statfsSync(incusDir);
  const requested = env.BERTH_INCUS_POOL_SIZE ? Number(env.BERTH_INCUS_POOL_SIZE) : undefined;
  if (requested !== undefined && !(requested > 0))
    throw new IncusError('BAD_CONFIG', `BERTH_INCUS_POOL_SIZE must be a number of GiB, not "${env.BERTH_INCUS_POOL_SIZE}".`);
  const size = poolSize(fs.bavail * fs.bsize, requested);
  log(`creating storage pool ${POOL}: btrfs on a ${size / GiB} GiB loop file`);
  const r = incus(['storage', 'create', POOL, 'btrfs', `size=${size / GiB}GiB`]);
  if (!r.ok) throw new IncusError('POOL_FAILED', `incus storage create ${POOL} btrfs failed: ${r.err}`);
  return { created: true, size };
}

export function profileYaml(pool = POOL, usr: string | null = null): string {
  const config = Object.entries(PROFILE_CONFIG)
    .map(([k, v]) => `  ${k}: "${v}"`)
    .join('\n');
  // The shared /usr (image.ts, ensureSharedUsr): an idmapped bind mount, read-only for the node.
  const usrDevice = usr ? `  usr:\n    path: /usr\n    readonly: "true"\n    shift: "true"\n    source: ${usr}\n    type: disk\n` : '';
  return `description: Berth learner node (limits, network and the mirror are set per instance)\nconfig:\n${config}\ndevices:\n  root:\n    path: /\n    pool: ${pool}\n    type: disk\n${usrDevice}`;
}

/** Whether the kernel can do idmapped mounts, which the shared /usr needs (as Incus itself reports it). */
export function idmappedMounts(): boolean {
  const r = incus(['query', '/1.0']);
  return r.ok && JSON.parse(r.out).environment?.kernel_features?.idmapped_mounts === 'true';
}

export function ensureProfile(pool = POOL, usr: string | null = null): { changed: boolean } {
  const cur = incus(['query', `/1.0/profiles/${PROFILE}`]);
  if (cur.ok) {
    const p = JSON.parse(cur.out) as { config: Record<string, string>; devices: Record<string, Record<string, string>> };
    const root = p.devices?.root;
    const u = p.devices?.usr;
    const same =
      Object.entries(PROFILE_CONFIG).every(([k, v]) => p.config?.[k] === v) &&
      Object.keys(p.config ?? {}).length === Object.keys(PROFILE_CONFIG).length &&
      root?.type === 'disk' &&
      root?.path === '/' &&
      root?.pool === pool &&
      (usr ? u?.source === usr && u?.path === '/usr' && u?.readonly === 'true' && u?.shift === 'true' : !u) &&
      Object.keys(p.devices).length === (usr ? 2 : 1);
    if (same) return { changed: false };
  } else {
    const c = incus(['profile', 'create', PROFILE]);
    if (!c.ok && !/already exists/.test(c.err)) throw new IncusError('PROFILE_FAILED', `incus profile create ${PROFILE} failed: ${c.err}`);
  }
  const r = incus(['profile', 'edit', PROFILE], profileYaml(pool, usr));
  if (!r.ok) throw new IncusError('PROFILE_FAILED', `incus profile edit ${PROFILE} failed: ${r.err}`);
  return { changed: true };
}

// The learner node image: Debian 13 minbase from the host's Debian mirror, the packages and init in
// image/, published to Incus under the alias berth-learner. Rebuilt only when the recipe (image/ folder,
// mirror) changes; the finished tar is cached under <state>/incus/ so a re-import skips the apt step.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianMirror, hashDir } from '../images/build.ts';
import { IncusError } from './errors.ts';
import { aptSourceFiles } from './packages.ts';
import { incus } from './preseed.ts';

export const IMAGE_ALIAS = 'berth-learner';
export const RECIPE_DIR = join(import.meta.dirname, 'image');
const SUITE = 'trixie';

/** The security archive the host's apt uses, if any (never hard-coded: deployments bring their own). */
export function securityMirror(aptDir = '/etc/apt'): string | undefined {
  const files = aptSourceFiles(aptDir);
  for (const f of files) {
    const m = /^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S*debian-security\S*)/m.exec(readFileSync(f, 'utf8'));
    if (m) return m[1];
  }
  return undefined;
}

export function recipeHash(): string {
  return hashDir(RECIPE_DIR, SUITE, debianMirror(), securityMirror() ?? '');
}

/** The recipe hash of the image the alias points at, or null when there is none. */
export function publishedRecipe(): string | null {
  const r = incus(['query', `/1.0/images/aliases/${IMAGE_ALIAS}`]);
  if (!r.ok) return null;
  const fp = JSON.parse(r.out).target as string;
  const img = incus(['query', `/1.0/images/${fp}`]);
  return img.ok ? (JSON.parse(img.out).properties?.['berth.recipe'] ?? null) : null;
}

function run(cmd: string, args: string[], what: string) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new IncusError('IMAGE_BUILD_FAILED', `${what} failed (exit ${r.status}):\n${(r.stderr || r.stdout || '').trim().split('\n').slice(-12).join('\n')}`);
  return r.stdout;
}

/** debootstrap --variant=minbase trixie, once; kept as a tar beside the catalog's bookworm one. */
function minbaseTar(stateDir: string, log: (m: string) => void): string {
  const cache = join(stateDir, 'rootfs');
  const tar = join(cache, `${SUITE}-minbase.tar`);
  if (existsSync(tar)) return tar;
  const dir = join(cache, SUITE);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`debootstrap --variant=minbase ${SUITE} (once; cached in ${tar})`);
  run('debootstrap', ['--variant=minbase', SUITE, dir, debianMirror()], 'debootstrap');
  spawnSync('bash', ['-c', `rm -rf ${dir}/var/lib/apt/lists/* ${dir}/var/cache/apt/*.bin ${dir}/var/cache/apt/archives/*.deb`]);
  run('tar', ['-C', dir, '-cf', `${tar}.part`, '.'], 'packing the minbase tree');
  renameSync(`${tar}.part`, tar);
  rmSync(dir, { recursive: true, force: true });
  return tar;
}

/** Builds <state>/incus/berth-learner-<recipe>.tar (Incus unified image: metadata.yaml + rootfs/). */
function imageTar(stateDir: string, recipe: string, log: (m: string) => void): string {
  const dir = join(stateDir, 'incus');
  const out = join(dir, `${IMAGE_ALIAS}-${recipe}.tar`);
  if (existsSync(out)) return out;
  const base = minbaseTar(stateDir, log);
  const work = join(dir, 'build');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'rootfs'), { recursive: true });
  run('tar', ['-C', join(work, 'rootfs'), '-xf', base], 'unpacking the minbase tree');
  log(`installing the learner node's packages (recipe ${recipe})`);
  // A private mount namespace: the chroot's /proc and /dev mounts cannot outlive a failed build.
  run(
    'unshare',
    ['--mount', '--propagation', 'private', join(RECIPE_DIR, 'build-rootfs.sh'), join(work, 'rootfs'), debianMirror(), securityMirror() ?? ''],
    'build-rootfs.sh',
  );
  writeFileSync(
    join(work, 'metadata.yaml'),
    [
      'architecture: x86_64',
      `creation_date: ${Math.floor(Date.now() / 1000)}`,
      'properties:',
      '  description: Berth learner node (Debian 13, rootful Docker in a user namespace)',
      '  os: debian',
      `  release: ${SUITE}`,
      `  berth.recipe: "${recipe}"`,
      '',
    ].join('\n'),
  );
  run('tar', ['-C', work, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-cf', `${out}.part`, 'metadata.yaml', 'rootfs'], 'packing the image');
  renameSync(`${out}.part`, out);
  rmSync(work, { recursive: true, force: true });
  // Older recipes' tars are of no further use.
  for (const f of readdirSync(dir)) if (f.startsWith(`${IMAGE_ALIAS}-`) && f.endsWith('.tar') && join(dir, f) !== out) rmSync(join(dir, f), { force: true });
  return out;
}

/**
 * The image's /usr, unpacked once on the host and mounted read-only into every node (profile device `usr`).
 * Why: each node's root is its own btrfs snapshot, so each would hold its own page cache of dockerd,
 * containerd and the rest (~180 MiB charged to every idle node, measured); one shared tree is cached once
 * (idle nodes: 39-40 MiB). Directories of older recipes stay while nodes may still have them mounted; all
 * but the two newest go.
 */
export function ensureSharedUsr(stateDir: string, recipe: string, log: (m: string) => void = () => {}): string | null {
  const dir = join(stateDir, 'incus');
  const usr = join(dir, `usr-${recipe}`);
  if (existsSync(usr)) return usr;
  const tar = join(dir, `${IMAGE_ALIAS}-${recipe}.tar`);
  if (!existsSync(tar)) {
    // Published earlier from another checkout (or the cache was cleared): Incus gives the same tar back.
    if (publishedRecipe() !== recipe) return null;
    log(`exporting ${IMAGE_ALIAS} from Incus to ${tar}`);
    mkdirSync(dir, { recursive: true });
    const e = incus(['image', 'export', IMAGE_ALIAS, tar.replace(/\.tar$/, '')]);
    if (!e.ok || !existsSync(tar)) return null;
  }
  log(`unpacking the node image's /usr into ${usr}`);
  rmSync(`${usr}.part`, { recursive: true, force: true });
  mkdirSync(`${usr}.part`, { recursive: true });
  run('tar', ['-C', `${usr}.part`, '--numeric-owner', '--xattrs', '--xattrs-include=*', '--strip-components=2', '-xf', tar, 'rootfs/usr'], 'unpacking /usr');
  renameSync(`${usr}.part`, usr);
  const old = readdirSync(dir)
    .filter((f) => /^usr-[0-9a-f]+$/.test(f) && f !== `usr-${recipe}`)
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of old.slice(1)) rmSync(join(dir, f), { recursive: true, force: true });
  return usr;
}

/** Publishes the image when its recipe changed; a no-op (two Incus queries) otherwise. */
export function ensureLearnerImage(stateDir: string, log: (m: string) => void = () => {}): { built: boolean; recipe: string } {
  const recipe = recipeHash();
  if (publishedRecipe() === recipe) return { built: false, recipe };
  const tar = imageTar(stateDir, recipe, log);
  log(`importing ${tar} into Incus as ${IMAGE_ALIAS}`);
  const imported = incus(['image', 'import', tar]);
  const fp = /fingerprint:\s*([0-9a-f]{64})/.exec(imported.out + imported.err)?.[1];
  if (!imported.ok || !fp) throw new IncusError('IMAGE_IMPORT_FAILED', `incus image import ${tar} failed: ${imported.err || imported.out}`);
  const old = incus(['query', `/1.0/images/aliases/${IMAGE_ALIAS}`]);
  const oldFp = old.ok ? (JSON.parse(old.out).target as string) : null;
  if (oldFp !== fp) {
    if (oldFp) incus(['image', 'alias', 'delete', IMAGE_ALIAS]);
    const a = incus(['image', 'alias', 'create', IMAGE_ALIAS, fp]);
    if (!a.ok) throw new IncusError('IMAGE_IMPORT_FAILED', `incus image alias create ${IMAGE_ALIAS} failed: ${a.err}`);
    // Instances made from the old image keep their own copy on the pool, so it can go.
    if (oldFp) incus(['image', 'delete', oldFp]);
  }
  return { built: true, recipe };
}

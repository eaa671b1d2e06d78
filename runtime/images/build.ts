// Builds the offline catalog into the host engine. Incremental: each image records a hash of its recipe
// and of its base in a label, and is skipped while both are unchanged. One failing image is named and
// the others still build.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../bootstrap/engine.ts';
import { CATALOG, imageRef, labels, type CatalogImage } from './catalog.ts';
import { docker, dockerSync, imageId, imageLabel } from './docker-cli.ts';

export const IMAGES_DIR = import.meta.dirname;
const SUITE = 'bookworm';

export type BuildResult = { name: string; status: 'built' | 'unchanged' | 'failed'; ms: number; error?: string };

/** Hash of every file in a folder (sorted), plus extra strings such as the base image id. */
export function hashDir(dir: string, ...extra: string[]): string {
  const h = createHash('sha256');
  for (const e of extra) h.update(e).update('\0');
  const walk = (d: string, rel: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p, `${rel}${f}/`);
      else h.update(`${rel}${f}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(dir, '');
  return h.digest('hex').slice(0, 16);
}

/** The Debian mirror this host's apt uses (never hard-coded: deployments bring their own). */
export function debianMirror(aptDir = '/etc/apt'): string {
  const files = [join(aptDir, 'sources.list.d', 'debian.sources'), join(aptDir, 'sources.list')].filter(existsSync);
  for (const f of files) {
    const m = /^URIs:\s*(\S+)/m.exec(readFileSync(f, 'utf8')) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(readFileSync(f, 'utf8'));
    if (m && !m[1].includes('security')) return m[1];
  }
  throw new Error(`No Debian mirror found in ${aptDir}/sources.list(.d); debootstrap needs one.`);
}

function labelArgs(img: CatalogImage, recipe: string, flag: '--label' | '--change') {
  return Object.entries(labels(img, recipe)).flatMap(([k, v]) => (flag === '--label' ? ['--label', `${k}=${v}`] : ['--change', `LABEL ${k}="${v}"`]));
}

async function tagAll(host: string, img: CatalogImage) {
  for (const t of img.tags.slice(1)) dockerSync(host, ['tag', imageRef(img), imageRef(img, t)]);
}

async function buildDebian(host: string, img: CatalogImage, log: (m: string) => void): Promise<'built' | 'unchanged'> {
  const mirror = debianMirror();
  const recipe = createHash('sha256').update(`${SUITE} minbase ${mirror}`).digest('hex').slice(0, 16);
  if (imageLabel(host, imageRef(img), 'berth.recipe') === recipe) return 'unchanged';
  const cache = join(stateDir(), 'rootfs');
  const tar = join(cache, `${SUITE}-minbase.tar`);
  if (!existsSync(tar)) {
    const dir = join(cache, SUITE);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    log(`debootstrap --variant=minbase ${SUITE} (once; cached in ${tar})`);
    const r = spawnSync('debootstrap', ['--variant=minbase', SUITE, dir, mirror], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`debootstrap failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    // Images are smaller and reproducible without apt's downloaded lists and package cache.
    spawnSync('bash', ['-c', `rm -rf ${dir}/var/lib/apt/lists/* ${dir}/var/cache/apt/*.bin ${dir}/var/cache/apt/archives/*.deb`]);
    const t = spawnSync('tar', ['-C', dir, '-cf', tar + '.part', '.']);
    if (t.status !== 0) throw new Error('packing the root file system failed');
    spawnSync('mv', [tar + '.part', tar]);
    rmSync(dir, { recursive: true, force: true });
  }
  const r = await docker(host, ['import', ...labelArgs(img, recipe, '--change'), '--change', 'CMD ["bash"]', '-', imageRef(img)], createReadStream(tar));
  if (r.code !== 0) throw new Error(`docker import failed: ${r.tail.trim()}`);
  return 'built';
}

async function buildBusybox(host: string, img: CatalogImage): Promise<'built' | 'unchanged'> {
  const bin = '/bin/busybox';
  if (!existsSync(bin)) throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  const recipe = createHash('sha256').update(readFileSync(bin)).digest('hex').slice(0, 16);
  if (imageLabel(host, imageRef(img), 'berth.recipe') === recipe) return 'unchanged';
  const r = spawnSync(
    'bash',
    [
      '-c',
      `set -e; d=$(mktemp -d); mkdir -p $d/bin $d/etc $d/tmp $d/root; cp ${bin} $d/bin/busybox;
    for a in $(${bin} --list); do [ -e $d/bin/$a ] || ln -s busybox $d/bin/$a; done
    echo 'root:x:0:0:root:/root:/bin/sh' > $d/etc/passwd; echo 'root:x:0:' > $d/etc/group; chmod 1777 $d/tmp
    tar -C $d -c . | DOCKER_HOST=${host} docker import ${labelArgs(img, recipe, '--change')
      .map((a) => `'${a}'`)
      .join(' ')} --change 'CMD ["sh"]' - ${imageRef(img)} >/dev/null; rm -rf $d`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`busybox import failed: ${r.stderr.trim()}`);
  return 'built';
}

async function buildDockerfile(host: string, img: CatalogImage, dir: string): Promise<'built' | 'unchanged'> {
  const baseId = imageId(host, 'debian:bookworm') ?? '';
  if (img.name === 'hello-world') {
    // Compiled on the host: the image holds nothing but this one static file.
    const r = spawnSync('gcc', ['-Os', '-static', '-nostdlib', '-fno-stack-protector', '-o', join(dir, 'hello'), join(dir, 'hello.c')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`compiling hello.c failed: ${r.stderr.trim()}`);
  }
  const recipe = hashDir(dir, baseId);
  if (imageLabel(host, imageRef(img), 'berth.recipe') === recipe) return 'unchanged';
  const r = await docker(host, [
    'build',
    '-q',
    '--force-rm',
    '--build-arg',
    'BASE=debian:bookworm',
    ...labelArgs(img, recipe, '--label'),
    '-t',
    imageRef(img),
    dir,
  ]);
  if (r.code !== 0)
    throw new Error(
      r.tail
        .trim()
        .split('\n')
        .filter((l) => !/DEPRECATED|buildx|BuildKit|docs\.docker/.test(l))
        .slice(-12)
        .join('\n'),
    );
  return 'built';
}

export type BuildOptions = { host: string; dir?: string; only?: string[]; concurrency?: number; log?: (m: string) => void };

/** Builds the catalog; never throws for one image: each result says what happened. */
export async function buildCatalog({ host, dir = IMAGES_DIR, only, concurrency = 2, log = () => {} }: BuildOptions): Promise<BuildResult[]> {
  const wanted = CATALOG.filter((i) => !only || only.includes(i.name));
  const results: BuildResult[] = [];
  const one = async (img: CatalogImage) => {
    const t0 = performance.now();
    try {
      const status =
        img.kind === 'debootstrap'
          ? await buildDebian(host, img, log)
          : img.kind === 'busybox'
            ? await buildBusybox(host, img)
            : await buildDockerfile(host, img, join(dir, img.name));
      await tagAll(host, img);
      results.push({ name: img.name, status, ms: performance.now() - t0 });
      if (status === 'built') log(`built ${img.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      results.push({ name: img.name, status: 'failed', ms: performance.now() - t0, error: (err as Error).message });
      log(`FAILED ${img.name}: ${(err as Error).message}`);
    }
  };
  // The base comes first: every Dockerfile builds FROM it.
  const base = wanted.find((i) => i.kind === 'debootstrap');
  const rest = wanted.filter((i) => i !== base);
  if (base) await one(base);
  if (base && results[0].status === 'failed') {
    for (const img of rest) results.push({ name: img.name, status: 'failed', ms: 0, error: 'the debian base image failed to build' });
    return results;
  }
  const queue = [...rest];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let img = queue.shift(); img; img = queue.shift()) await one(img);
    }),
  );
  return results;
}

/** Extra Dockerfile folders under dir that the catalog does not list (for tests with temporary catalogs). */
export function dockerfileDirs(dir: string): string[] {
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, 'Dockerfile')));
}

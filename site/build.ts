// Builds the lesson site into site/dist with Astro, and skips the build when nothing it is made from
// changed since the last one (a hash of the site's sources, the lessons and the lockfile), so that
// `npm start` and `npm test` can call it every time.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const siteDir = join(root, 'site');
const distDir = join(siteDir, 'dist');
const stampFile = join(distDir, '.build-stamp');
const SKIP = new Set(['dist', '.astro', 'node_modules']);

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((name) => {
    if (SKIP.has(name)) return [];
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/** What the built site depends on: its own sources, every lesson file and the installed packages. */
export function sourceHash(lessonsDir = process.env.BERTH_LESSONS_DIR ?? join(root, 'lessons')): string {
  const h = createHash('sha256');
  for (const f of [...files(siteDir), ...files(lessonsDir), join(root, 'package-lock.json')]) {
    h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

export type BuildResult = { built: boolean; ms: number };

export async function buildSite({ force = false, log = (m: string) => console.error(`[site] ${m}`) } = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const hash = sourceHash();
  if (!force && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
    log('up to date');
    return { built: false, ms: performance.now() - t0 };
  }
  const astroPkg = JSON.parse(readFileSync(join(root, 'node_modules', 'astro', 'package.json'), 'utf8')) as { bin: { astro: string } };
  const bin = join(root, 'node_modules', 'astro', astroPkg.bin.astro);
  const output: string[] = [];
  const code = await new Promise<number | null>((ok) => {
    const child = spawn(process.execPath, [bin, 'build', '--root', siteDir], {
      cwd: root,
      // Astro's telemetry would call out of this machine.
      env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (b: Buffer) => output.push(b.toString()));
    child.stderr.on('data', (b: Buffer) => output.push(b.toString()));
    child.on('close', ok);
  });
  const text = output.join('');
  if (code !== 0) throw new Error(`astro build failed (exit ${code}):\n${text.slice(-4000)}`);
  for (const line of text.split('\n').filter((l) => /\bwarn|skipped/i.test(l))) log(line.trim());
  writeFileSync(stampFile, hash);
  const ms = performance.now() - t0;
  log(`built in ${(ms / 1000).toFixed(1)} s`);
  return { built: true, ms };
}

if (import.meta.main) {
  try {
    await buildSite({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(`[site] ${(err as Error).message}`);
    process.exit(1);
  }
}

// Builds the lesson site into site/dist with Astro, and skips the build when nothing it is made from
// changed since the last one (a hash of the site's sources, the lessons and the lockfile), so that
// `npm start` and `npm test` can call it every time.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = resolve(import.meta.dirname, '..');
const siteDir = join(root, 'site');
const distDir = join(siteDir, 'dist');
const stampFile = join(distDir, '.build-stamp');
// Work space outside the repo's tracked tree: the lock and the half-built output.
const cacheDir = join(root, 'node_modules', '.cache', 'berth-site');
const lockDir = join(cacheDir, 'build.lock');
const SKIP = new Set(['dist', '.astro', 'node_modules']);

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
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

const COMPRESSIBLE = /\.(js|css|html|svg|json|ttf|txt|xml)$/;

/** Writes .br and .gz beside every text file the server may send (it serves them to clients that accept them). */
function compressAll(dir: string) {
  for (const f of files(dir)) {
    if (!COMPRESSIBLE.test(f) || statSync(f).size < 1024) continue;
    const body = readFileSync(f);
    writeFileSync(`${f}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }));
    writeFileSync(`${f}.gz`, gzipSync(body, { level: 9 }));
  }
}

export type BuildResult = { built: boolean; ms: number };

export async function buildSite({ force = false, log = (m: string) => console.error(`[site] ${m}`) } = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const upToDate = () => !force && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === sourceHash();
  if (upToDate()) {
    log('up to date');
    return { built: false, ms: performance.now() - t0 };
  }
  // Several test files (and `npm start`) may ask at once: one builds, the others wait and find it done.
  return withLock(log, async () => {
    if (upToDate()) {
      log('up to date (built by another process)');
      return { built: false, ms: performance.now() - t0 };
    }
    const hash = sourceHash();
    const out = join(cacheDir, `dist-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    await astroBuild(out, log);
    compressAll(out);
    writeFileSync(join(out, '.build-stamp'), hash);
    // Swap the finished site in, so a running server never serves a half-built one.
    const old = join(cacheDir, `old-${process.pid}`);
    if (existsSync(distDir)) renameSync(distDir, old);
    renameSync(out, distDir);
    rmSync(old, { recursive: true, force: true });
    const ms = performance.now() - t0;
    log(`built in ${(ms / 1000).toFixed(1)} s`);
    return { built: true, ms };
  });
}

async function astroBuild(outDir: string, log: (m: string) => void) {
  const astroPkg = JSON.parse(readFileSync(join(root, 'node_modules', 'astro', 'package.json'), 'utf8')) as { bin: { astro: string } };
  const bin = join(root, 'node_modules', 'astro', astroPkg.bin.astro);
  const output: string[] = [];
  const code = await new Promise<number | null>((ok) => {
    const child = spawn(process.execPath, [bin, 'build', '--root', siteDir], {
      cwd: root,
      // Astro's telemetry would call out of this machine. BERTH_SITE_OUT is read by astro.config.mjs.
      env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1', BERTH_SITE_OUT: outDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (b: Buffer) => output.push(b.toString()));
    child.stderr.on('data', (b: Buffer) => output.push(b.toString()));
    child.on('close', ok);
  });
  const text = output.join('');
  if (code !== 0) throw new Error(`astro build failed (exit ${code}):\n${text.slice(-4000)}`);
  for (const line of text.split('\n').filter((l) => /\bwarn|skipped/i.test(l))) log(line.trim());
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function withLock<T>(log: (m: string) => void, f: () => Promise<T>): Promise<T> {
  mkdirSync(cacheDir, { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  let said = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pidFile = join(lockDir, 'pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      // A lock left by a build that died is taken over; one just being made (no pid yet) is waited for.
      if (pid && !alive(pid)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another site build has held ${lockDir} for 10 minutes`);
      if (!said) {
        log(`waiting for another site build (pid ${pid || '?'})`);
        said = true;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await f();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  try {
    await buildSite({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(`[site] ${(err as Error).message}`);
    process.exit(1);
  }
}

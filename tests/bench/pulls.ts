// 4. Pulls and builds inside a sandbox. Pulls: `docker pull <image>` as a learner types it (cold: the engine
// holds no image; warm: the image is already there), and by the mirror's own address, beside the host
// fetching and unpacking the same layers straight from the mirror, and beside the host's own Docker pulling
// the same image from the mirror into an empty engine (a scratch dockerd: lib/scratch-engine.ts). Builds: one small Dockerfile without and
// with cache, beside the same build on the host engine.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { exec } from '../helpers/server.ts';
import { type Bench, type Ctx, benchServer, closeServer, create } from './lib/context.ts';
import { hostDocker } from './lib/host.ts';
import { type ScratchEngine, startScratchEngine } from './lib/scratch-engine.ts';
import { ms, ratio } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

const MANIFEST_TYPES = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';

const DOCKERFILE = `FROM debian:12
RUN for i in $(seq 1 2000); do echo "line $i" >> /notes.txt; done && sha256sum /notes.txt > /notes.sum
COPY app.sh /app/app.sh
CMD ["sh", "/app/app.sh"]
`;
const APP = 'echo "notes: $(wc -l < /notes.txt)"\n';

/** Milliseconds a shell snippet takes inside the sandbox, timed in there (no API overhead). */
async function timed(b: Bench, c: { id: string; token: string; expiresAt: string; nodes: { name: string }[] }, cmd: string): Promise<number> {
  const r = await exec(b.s, c, `s=$(date +%s%N); ${cmd} >/dev/null || exit 99; e=$(date +%s%N); echo $(( (e - s) / 1000 ))`, { timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed in the sandbox (${r.exitCode}): ${r.stderr.slice(-500)}`);
  return Number(r.stdout.trim()) / 1000;
}

/** The physical work of a pull, without an engine: fetch each layer from the mirror and unpack it. */
async function hostFetch(port: number, image: string): Promise<number> {
  const [name, tag = 'latest'] = image.split(':');
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
  const base = `http://127.0.0.1:${port}/v2/library/${name}`;
  try {
    const t0 = performance.now();
    const r = await fetch(`${base}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPES } });
    if (r.status !== 200) throw new Error(`mirror manifest ${image}: ${r.status}`);
    const m = (await r.json()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
    await (await fetch(`${base}/blobs/${m.config.digest}`)).arrayBuffer();
    for (const layer of m.layers) {
      const blob = await fetch(`${base}/blobs/${layer.digest}`);
      if (blob.status !== 200 || !blob.body) throw new Error(`mirror blob ${layer.digest}: ${blob.status}`);
      const gz = layer.mediaType.endsWith('gzip');
      const tar = spawn('tar', [gz ? '-xzf' : '-xf', '-', '-C', dir, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'ignore'] });
      Readable.fromWeb(blob.body as import('node:stream/web').ReadableStream).pipe(tar.stdin);
      const code = await new Promise<number | null>((ok) => tar.on('close', ok));
      if (code !== 0) throw new Error(`tar failed on ${layer.digest}`);
    }
    return performance.now() - t0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The least an up-to-date pull must do: ask the mirror for the manifest. */
async function hostManifest(port: number, image: string): Promise<number> {
  const [name, tag = 'latest'] = image.split(':');
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/v2/library/${name}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPES } });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`mirror manifest ${image}: ${r.status}`);
  return performance.now() - t0;
}

export async function pulls(ctx: Ctx) {
  const mirrorPort = Number(process.env.BERTH_MIRROR_PORT ?? 5000);
  const b = await benchServer(ctx, { BERTH_POOL_SIZE: '0' });
  const rows: Record<string, Record<string, number>> = {};
  let scratch: ScratchEngine | null = null;
  try {
    const c = await create(b);
    // The host's own Docker, empty for every image: what a cold pull costs an engine outside any sandbox.
    scratch = await startScratchEngine(ctx.log);
    const scratchDocker = hostDocker(scratch.host);
    const hostEngineVersion = (await scratchDocker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
    // The engine's own word for its mirror (rootless nodes and Incus nodes keep daemon.json in different places).
    const mirror = (
      await exec(b.s, c, `docker info --format '{{range .RegistryConfig.Mirrors}}{{println .}}{{end}}' | head -1 | sed -E 's#^https?://##; s#/+$##'`)
    ).stdout.trim();
    if (!mirror) throw new Error('the sandbox has no registry mirror configured');
    const reset = 'docker rm -f $(docker ps -aq) >/dev/null 2>&1; docker rmi -f $(docker images -aq) >/dev/null 2>&1; true';
    const scratchReset = async () => {
      const images = (await scratchDocker(['images', '-aq'])).stdout.trim().split('\n').filter(Boolean);
      if (images.length) await scratchDocker(['rmi', '-f', ...new Set(images)]);
    };
    for (const image of ctx.flags.images) {
      ctx.log(`pulls: ${image}`);
      // Cold pulls in the sandbox and on the host's Docker in turn, medians compared: one pair alone on a
      // shared two-core machine moved between 1.0× and 1.4× with whatever else ran in the same seconds.
      const colds: number[] = [];
      const hostEngines: number[] = [];
      for (let round = 0; round < ctx.flags.pullRounds; round++) {
        await exec(b.s, c, reset, { timeoutMs: 120_000 });
        colds.push(await timed(b, c, `docker pull -q ${image}`));
        await scratchReset();
        // By the mirror's address: nothing the scratch engine does can leave this machine.
        hostEngines.push((await scratchDocker(['pull', '-q', `127.0.0.1:${mirrorPort}/library/${image}`], { timeoutMs: 600_000 })).ms);
      }
      const cold = median(colds);
      const hostEngine = median(hostEngines);
      const warm = await timed(b, c, `docker pull -q ${image}`);
      await exec(b.s, c, reset, { timeoutMs: 120_000 });
      const byMirror = await timed(b, c, `docker pull -q ${mirror}/library/${image}`);
      const warmByMirror = await timed(b, c, `docker pull -q ${mirror}/library/${image}`);
      const host = await hostFetch(mirrorPort, image);
      const manifest = await hostManifest(mirrorPort, image);
      rows[image] = {
        coldMs: cold,
        warmMs: warm,
        coldByMirrorAddressMs: byMirror,
        warmByMirrorAddressMs: warmByMirror,
        hostFetchAndUnpackMs: host,
        hostManifestMs: manifest,
        hostEngineColdMs: hostEngine,
      };
      ctx.log(
        `pulls: ${image} cold ${ms(cold)} in the sandbox, ${ms(hostEngine)} on the host's Docker ${hostEngineVersion} (${ratio(cold, hostEngine)}×; medians of ${colds.map(ms).join(', ')} and ${hostEngines.map(ms).join(', ')}), ${ms(host)} fetch + unpack (${ratio(cold, host)}×)`,
      );
      const baselineIs = 'host fetches and unpacks the same layers from the mirror';
      const warmIs = 'host fetches the manifest from the mirror';
      ctx.rows.push(
        {
          section: 'pulls',
          what: `\`docker pull ${image}\`, cold`,
          berth: ms(cold),
          baseline: ms(host),
          baselineIs,
          ratio: ratio(cold, host),
          ...(image === 'nginx' ? { target: '< 2 s', met: cold < 2000 } : {}),
        },
        {
          section: 'pulls',
          what: `\`docker pull ${image}\`, cold, against the host's own Docker`,
          berth: ms(cold),
          baseline: ms(hostEngine),
          baselineIs: `an empty dockerd ${hostEngineVersion} on the host pulls the same image from the mirror (medians of ${colds.length} rounds, each pulling in the sandbox then on the host)`,
          ratio: ratio(cold, hostEngine),
          ...(image === 'nginx' ? { target: '≤ 1.2×', met: cold <= 1.2 * hostEngine } : {}),
        },
        {
          section: 'pulls',
          what: `\`docker pull ${image}\`, warm (already there)`,
          berth: ms(warm),
          baseline: ms(manifest),
          baselineIs: warmIs,
          ratio: ratio(warm, manifest),
        },
        {
          section: 'pulls',
          what: `\`docker pull <mirror>/library/${image}\`, cold`,
          berth: ms(byMirror),
          baseline: ms(host),
          baselineIs,
          ratio: ratio(byMirror, host),
        },
        {
          section: 'pulls',
          what: `\`docker pull <mirror>/library/${image}\`, warm`,
          berth: ms(warmByMirror),
          baseline: ms(manifest),
          baselineIs: warmIs,
          ratio: ratio(warmByMirror, manifest),
        },
      );
    }

    ctx.log('builds: a small Dockerfile, without and with cache');
    await exec(b.s, c, `${reset}; docker pull -q debian:12 >/dev/null && mkdir -p ~/bench-build`, { timeoutMs: 300_000 });
    for (const [file, text] of [
      ['Dockerfile', DOCKERFILE],
      ['app.sh', APP],
    ]) {
      const r = await b.s.api(`/api/sessions/${c.id}/files?path=${encodeURIComponent(`bench-build/${file}`)}`, {
        method: 'PUT',
        token: c.token,
        json: { content: text },
      });
      if (r.status >= 300) throw new Error(`writing ${file}: ${r.status} ${await r.text()}`);
    }
    const build = (flags: string) => timed(b, c, `cd ~/bench-build && docker build ${flags} -q -t bench-build .`);
    const noCache = await build('--no-cache');
    const cached = await build('');

    // The same build on the host engine (the legacy builder, as in the sandbox), under a tag removed afterwards.
    const dir = mkdtempSync(join(tmpdir(), 'berth-bench-build-'));
    const tag = `berth-bench-build:${process.pid}`;
    const hostBuild = async (flags: string[]) => (await ctx.docker(['build', ...flags, '-q', '-t', tag, dir], { env: { DOCKER_BUILDKIT: '0' } })).ms;
    let hostNoCache = NaN;
    let hostCached = NaN;
    try {
      writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
      writeFileSync(join(dir, 'app.sh'), APP);
      hostNoCache = await hostBuild(['--no-cache']);
      hostCached = await hostBuild([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await ctx.docker(['rmi', tag]).catch(() => {});
    }
    rows.build = { noCacheMs: noCache, cachedMs: cached, hostNoCacheMs: hostNoCache, hostCachedMs: hostCached };
    const baselineIs = 'the same build on the host engine';
    ctx.rows.push(
      {
        section: 'builds',
        what: 'small Dockerfile, `--no-cache`',
        berth: ms(noCache),
        baseline: ms(hostNoCache),
        baselineIs,
        ratio: ratio(noCache, hostNoCache),
      },
      { section: 'builds', what: 'small Dockerfile, cached', berth: ms(cached), baseline: ms(hostCached), baselineIs, ratio: ratio(cached, hostCached) },
    );
  } finally {
    ctx.data.pulls = rows;
    await scratch?.stop();
    await closeServer(b, ctx);
  }
}

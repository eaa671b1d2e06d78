// The registry mirror: the catalog's `registry` image run as berth-mirror on the host engine, holding
// every catalog image as library/<name>:<tag>. Learner engines use it as their registry mirror, reached
// over each sandbox's own bridge (the server connects it there), so it needs no public port.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { stateDir } from '../bootstrap/engine.ts';
import { CATALOG, imageRef } from '../images/catalog.ts';
import { docker, dockerSync, imageId } from '../images/docker-cli.ts';

export const MIRROR = 'berth-mirror';
export const MIRROR_NETWORK = 'berth-mirror';

export class MirrorError extends Error {}

/** Resolves false when something else already listens on 127.0.0.1:port. */
function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });
}

function running(host: string): { running: boolean; port: number | null } | null {
  const r = dockerSync(host, ['inspect', '-f', '{{.State.Running}} {{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}', MIRROR]);
  if (r.status !== 0) return null;
  const [state, port] = r.stdout.trim().split(' ');
  return { running: state === 'true', port: port ? Number(port) : null };
}

export type MirrorOptions = { host: string; port?: number; upstream?: string; log?: (m: string) => void };

/** Starts the mirror (idempotent) and returns the loopback port it is published on for pushes. */
export async function startMirror({ host, port = 5000, upstream, log = () => {} }: MirrorOptions): Promise<number> {
  const now = running(host);
  if (now?.running && now.port === port) return port;
  // The port is checked before an old mirror is replaced: a bad choice of port must not cost the working one.
  if (!(await portFree(port))) {
    throw new MirrorError(`Port 127.0.0.1:${port} is already taken by another program, so the registry mirror cannot use it. Stop that program or set BERTH_MIRROR_PORT to a free port.`);
  }
  if (now) dockerSync(host, ['rm', '-f', MIRROR]);
  if (dockerSync(host, ['network', 'inspect', MIRROR_NETWORK]).status !== 0) {
    dockerSync(host, ['network', 'create', '--label', 'berth.managed=1', '--label', 'berth.role=mirror-net', MIRROR_NETWORK]);
  }
  const args = ['run', '-d', '--name', MIRROR, '--restart', 'unless-stopped', '--network', MIRROR_NETWORK,
    '--label', 'berth.managed=1', '--label', 'berth.role=mirror',
    '-v', 'berth-mirror-data:/var/lib/registry', '-p', `127.0.0.1:${port}:5000`,
    ...(upstream ? ['-e', `REGISTRY_PROXY_REMOTEURL=${upstream}`] : []), 'registry:2'];
  const r = dockerSync(host, args);
  if (r.status !== 0) throw new MirrorError(`Starting the registry mirror failed: ${r.stderr.trim()}`);
  for (let i = 0; i < 50; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) { log(`registry mirror up on 127.0.0.1:${port}`); return port; } } catch { /* not yet */ }
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new MirrorError(`The registry mirror did not answer on 127.0.0.1:${port}; see docker logs ${MIRROR}.`);
}

/** Pushes every catalog tag whose image changed since the last push (or that the registry lacks). */
export async function pushCatalog({ host, port, log = () => {} }: { host: string; port: number; log?: (m: string) => void }) {
  const record = join(stateDir(), 'mirror-pushed.json');
  const pushed: Record<string, string> = existsSync(record) ? JSON.parse(readFileSync(record, 'utf8')) : {};
  let count = 0;
  const todo: { ref: string; id: string; name: string; tag: string }[] = [];
  for (const img of CATALOG) {
    for (const tag of img.tags) {
      const ref = imageRef(img, tag);
      const id = imageId(host, ref);
      if (!id) continue; // not built (its failure was reported by the build)
      const there = await fetch(`http://127.0.0.1:${port}/v2/library/${img.name}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } }).then((r) => r.ok, () => false);
      if (!(there && pushed[ref] === id)) todo.push({ ref, id, name: img.name, tag });
    }
  }
  // Pushing compresses every layer on one core, so two pushes at a time use this machine's two cores.
  const push = async ({ ref, id }: (typeof todo)[number]) => {
    const target = `127.0.0.1:${port}/library/${ref}`;
    dockerSync(host, ['tag', ref, target]);
    const r = await docker(host, ['push', '-q', target]);
    dockerSync(host, ['rmi', target]);
    if (r.code !== 0) throw new MirrorError(`Pushing ${ref} to the mirror failed: ${r.tail.trim()}`);
    pushed[ref] = id;
    count++;
  };
  // Extra tags of one image reuse its blobs, so the first tag of each image goes first.
  const first = todo.filter((t, i) => todo.findIndex((u) => u.name === t.name) === i);
  const rest = todo.filter((t) => !first.includes(t));
  for (const batch of [first, rest]) {
    const queue = [...batch];
    await Promise.all([0, 1].map(async () => { for (let t = queue.shift(); t; t = queue.shift()) await push(t); }));
  }
  // With DOCKER_HOST set, nothing else may have made the state folder yet.
  mkdirSync(dirname(record), { recursive: true });
  writeFileSync(record, JSON.stringify(pushed, null, 2) + '\n');
  if (count) log(`pushed ${count} tags to the mirror`);
  return count;
}

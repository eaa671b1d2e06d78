// The registry mirror: the catalog's `registry` image run as berth-mirror on the host engine, holding
// every catalog image as library/<name>:<tag>. Learner engines use it as their registry mirror, reached
// over each sandbox's own bridge (the server connects it there), so it needs no public port.
// Every learner shares it, so it is read-only: registry read-only mode (no push, upload or delete), its
// volume mounted read-only, and no forwarding between the sandbox networks it sits on. The catalog is
// written by a second registry on the same volume that exists only while pushing, published on the host's
// loopback, which no sandbox can reach.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { stateDir } from '../bootstrap/engine.ts';
import { CATALOG, imageRef } from '../images/catalog.ts';
import { docker, dockerSync, imageId } from '../images/docker-cli.ts';

export const MIRROR = 'berth-mirror';
export const MIRROR_WRITER = 'berth-mirror-writer';
const VOLUME = 'berth-mirror-data';
/** Bumped when the mirror's run options change, so an older mirror is replaced. */
const MIRROR_MODE = 'readonly-1';
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

function running(host: string, name = MIRROR): { running: boolean; port: number | null; mode: string } | null {
  const r = dockerSync(host, [
    'inspect',
    '-f',
    '{{.State.Running}} {{index .Config.Labels "berth.mirror-mode"}} {{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}',
    name,
  ]);
  if (r.status !== 0) return null;
  const [state, mode, port] = r.stdout.trim().split(' ');
  return { running: state === 'true', port: port ? Number(port) : null, mode };
}

async function waitRegistry(port: number, name: string) {
  for (let i = 0; i < 50; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new MirrorError(`The registry did not answer on 127.0.0.1:${port}; see docker logs ${name}.`);
}

export type MirrorOptions = { host: string; port?: number; upstream?: string; log?: (m: string) => void };

/** Starts the read-only mirror (idempotent) and returns the loopback port it is published on for the host. */
export async function startMirror({ host, port = 5000, upstream, log = () => {} }: MirrorOptions): Promise<number> {
  const now = running(host);
  if (now?.running && now.port === port && now.mode === MIRROR_MODE) return port;
  // An older, writable mirror gives up its port first.
  if (now && now.port === port && now.mode !== MIRROR_MODE) dockerSync(host, ['rm', '-f', MIRROR]);
  // The port is checked before an old mirror is replaced: a bad choice of port must not cost the working one.
  if (!(await portFree(port))) {
    throw new MirrorError(
      `Port 127.0.0.1:${port} is already taken by another program, so the registry mirror cannot use it. Stop that program or set BERTH_MIRROR_PORT to a free port.`,
    );
  }
  if (now) dockerSync(host, ['rm', '-f', MIRROR]);
  if (dockerSync(host, ['network', 'inspect', MIRROR_NETWORK]).status !== 0) {
    dockerSync(host, ['network', 'create', '--label', 'berth.managed=1', '--label', 'berth.role=mirror-net', MIRROR_NETWORK]);
  }
  // A pull-through cache (upstream) must write its cache; the registry refuses pushes in that mode itself.
  const args = [
    'run',
    '-d',
    '--name',
    MIRROR,
    '--restart',
    'unless-stopped',
    '--network',
    MIRROR_NETWORK,
    '--label',
    'berth.managed=1',
    '--label',
    'berth.role=mirror',
    '--label',
    `berth.mirror-mode=${MIRROR_MODE}`,
    // The mirror sits on every session's network: it must never route between them.
    '--sysctl',
    'net.ipv4.ip_forward=0',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '-v',
    `${VOLUME}:/var/lib/registry${upstream ? '' : ':ro'}`,
    '-p',
    `127.0.0.1:${port}:5000`,
    ...(upstream ? ['-e', `REGISTRY_PROXY_REMOTEURL=${upstream}`, 'registry:2'] : ['registry:2', '/etc/docker/registry/readonly.yml']),
  ];
  const r = dockerSync(host, args);
  if (r.status !== 0) throw new MirrorError(`Starting the registry mirror failed: ${r.stderr.trim()}`);
  await waitRegistry(port, MIRROR);
  log(`registry mirror (read-only) up on 127.0.0.1:${port}`);
  return port;
}

/** A writable registry on the mirror's volume, on an ephemeral loopback port, for as long as `work` runs. */
async function withWriter<T>(host: string, work: (port: number) => Promise<T>): Promise<T> {
  dockerSync(host, ['rm', '-f', MIRROR_WRITER]);
  const r = dockerSync(host, [
    'run',
    '-d',
    '--name',
    MIRROR_WRITER,
    '--label',
    'berth.managed=1',
    '--label',
    'berth.role=mirror-writer',
    '-e',
    'REGISTRY_STORAGE_DELETE_ENABLED=false',
    '-v',
    `${VOLUME}:/var/lib/registry`,
    '-p',
    '127.0.0.1::5000',
    'registry:2',
  ]);
  if (r.status !== 0) throw new MirrorError(`Starting the mirror's writer failed: ${r.stderr.trim()}`);
  try {
    const port = running(host, MIRROR_WRITER)?.port;
    if (!port) throw new MirrorError("The mirror's writer has no published port.");
    await waitRegistry(port, MIRROR_WRITER);
    return await work(port);
  } finally {
    dockerSync(host, ['rm', '-f', MIRROR_WRITER]);
  }
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
      const there = await fetch(`http://127.0.0.1:${port}/v2/library/${img.name}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      }).then(
        (r) => r.ok,
        () => false,
      );
      if (!(there && pushed[ref] === id)) todo.push({ ref, id, name: img.name, tag });
    }
  }
  if (!todo.length) return 0;
  // Pushing compresses every layer on one core, so two pushes at a time use this machine's two cores.
  const push =
    (writer: number) =>
    async ({ ref, id }: (typeof todo)[number]) => {
      const target = `127.0.0.1:${writer}/library/${ref}`;
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
  await withWriter(host, async (writer) => {
    for (const batch of [first, rest]) {
      const queue = [...batch];
      await Promise.all(
        [0, 1].map(async () => {
          for (let t = queue.shift(); t; t = queue.shift()) await push(writer)(t);
        }),
      );
    }
  });
  // With DOCKER_HOST set, nothing else may have made the state folder yet.
  mkdirSync(dirname(record), { recursive: true });
  writeFileSync(record, JSON.stringify(pushed, null, 2) + '\n');
  if (count) log(`pushed ${count} tags to the mirror`);
  return count;
}

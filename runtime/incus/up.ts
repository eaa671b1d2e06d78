// Brings Incus up for learner nodes: host packages, lxcfs then incusd, Berth's pool and profile, the
// learner image. Idempotent; a second run is a handful of queries. Returns what the provider needs.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../bootstrap/engine.ts';
import { ensureIncusd, ensureLxcfs } from './daemons.ts';
import { liftSharedCounts } from './host-limits.ts';
import { ensureLearnerImage, ensureSharedUsr, IMAGE_ALIAS } from './image.ts';
import { ensureIncusPackages, incusUnsupported } from './packages.ts';
import { ensurePool, ensureProfile, idmappedMounts, POOL, PROFILE } from './preseed.ts';

/** `changed` names what this call had to do (empty when everything was in place already). */
export type IncusRuntime = { socketPath: string; image: string; pool: string; profile: string; changed: string[] };
type Step = <T>(name: string, f: () => Promise<T> | T) => Promise<T>;

/** Why Berth will not bring Incus up here, or null. BERTH_INCUS=0 turns it off on a host that could. */
export function incusSkipReason(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.BERTH_INCUS === '0') return 'BERTH_INCUS=0';
  return incusUnsupported();
}

export async function ensureIncus(opts: { env?: NodeJS.ProcessEnv; log?: (m: string) => void; step?: Step } = {}): Promise<IncusRuntime> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const step: Step = opts.step ?? (async (_n, f) => f());
  const dir = join(stateDir(env), 'incus');
  mkdirSync(dir, { recursive: true });
  const changed: string[] = [];
  const pkgs = await step('incus packages', () => ensureIncusPackages(log));
  if (pkgs.installed.length) changed.push(`installed ${pkgs.installed.join(' ')}`);
  // Host-wide: every node's inotify instances and namespaces count as root's (host-limits.ts says why).
  const counts = await step('shared kernel counts', () => liftSharedCounts({ log }));
  if (counts.raised.length) changed.push(`raised ${counts.raised.map((r) => r.sysctl).join(' ')}`);
  const daemon = await step('incusd', async () => {
    if ((await ensureLxcfs(dir, log)).started) changed.push('started lxcfs');
    return ensureIncusd(dir, log, env);
  });
  if (daemon.started) changed.push('started incusd');
  // incusd looks for lxcfs once, when it starts: nodes of a daemon that was up before lxcfs see the host's figures.
  else if (changed.includes('started lxcfs'))
    log('lxcfs started after incusd: restart incusd (nodes keep running) for free/nproc in nodes to show their limits');
  await step('incus pool', () => {
    if (ensurePool(log, env).created) changed.push(`created pool ${POOL}`);
  });
  const image = await step('learner node image', () => ensureLearnerImage(stateDir(env), log));
  if (image.built) changed.push(`published ${IMAGE_ALIAS} (recipe ${image.recipe})`);
  // The profile comes last: it names the image's shared /usr, which exists once the image does.
  await step('incus profile', () => {
    const shared = env.BERTH_INCUS_SHARED_USR !== '0' && idmappedMounts();
    const usr = shared ? ensureSharedUsr(stateDir(env), image.recipe, log) : null;
    if (shared && !usr) log(`no cached image tar for recipe ${image.recipe}: nodes keep their own /usr (more memory per node)`);
    if (ensureProfile(POOL, usr).changed) changed.push(`wrote profile ${PROFILE}${usr ? ' (shared /usr)' : ''}`);
  });
  return { socketPath: daemon.socketPath, image: IMAGE_ALIAS, pool: POOL, profile: PROFILE, changed };
}

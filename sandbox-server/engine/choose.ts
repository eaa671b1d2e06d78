// Which provider runs learner nodes when the operator did not say (BERTH_PROVIDER=auto): Incus wherever the
// bring-up could set it up (incusd answers and holds the learner image), because only its nodes give learners
// the Docker the lessons teach (enforced limits, `docker top`, a Swarm join that pastes, one host identity per
// learner); the rootless Docker provider everywhere else (no root, no Incus), with the reason in the log.
import { existsSync } from 'node:fs';
import { IncusClient } from './incus/client.ts';

export type ProviderKind = 'docker' | 'incus';
type Log = { info: (o: object, msg: string) => void; warn: (o: object, msg: string) => void };

export async function chooseProvider(want: ProviderKind | 'auto', incus: { socket: string; image: string }, log: Log): Promise<ProviderKind> {
  if (want !== 'auto') return want;
  const why = await incusUnusable(incus);
  if (why) log.warn({ reason: why }, 'learner nodes use the rootless Docker provider (BERTH_PROVIDER=auto)');
  else log.info({ image: incus.image }, 'learner nodes are Incus system containers (BERTH_PROVIDER=auto)');
  return why ? 'docker' : 'incus';
}

/** Why Incus cannot serve learner nodes here, or null when it can. */
async function incusUnusable({ socket, image }: { socket: string; image: string }): Promise<string | null> {
  if (!existsSync(socket)) return `no incusd socket at ${socket}`;
  try {
    await new IncusClient({ socketPath: socket }).get(`/1.0/images/aliases/${encodeURIComponent(image)}`);
    return null;
  } catch (err) {
    return `incusd at ${socket} has no usable image ${image}: ${(err as Error).message}`;
  }
}

// The host's side of a provider's nodes, for benchmarks (`npm run bench -- --provider`) and tests that look
// from outside: the Docker provider (rootless engines in host engine containers) or the Incus provider
// (system containers). A node's host pid (its cgroup's memory, CPU and limits) and the sweep after a
// server differ; everything else goes through Berth's API.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../sandbox-server/engine/docker.ts';
import { LoopDisks } from '../../sandbox-server/engine/disks.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { instanceName, KEY } from '../../sandbox-server/engine/incus/spec.ts';
import { LocalDockerProvider } from '../../sandbox-server/engine/local-docker.ts';
import { containerName } from '../../sandbox-server/engine/node-spec.ts';
import type { SandboxProvider } from '../../sandbox-server/engine/provider.ts';
import { Store } from '../../sandbox-server/store.ts';
import { containerPid, hostDocker, memoryCgroupOfPid } from '../bench/lib/host.ts';

export const PROVIDERS = ['docker', 'incus'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type Held = { sandbox: string } | { instance: string };

export type ProviderNodes = {
  name: ProviderName;
  /** Server settings every server of this provider gets. */
  settings: Record<string, string>;
  /** The host pid of a node's init: its cgroup holds everything the node runs. */
  nodePid: (sessionId: string, node: string) => Promise<number>;
  /** Removes every sandbox a benchmark server left behind, with Berth's own removal code. */
  sweep: (stateDir: string) => Promise<number>;
  /** What the host holds (containers or instances) of one sandbox, or of every sandbox of one server's state
   * folder (its instance id), looked up on the host, not through Berth. */
  heldFor: (which: Held) => Promise<string[]>;
};

const INCUS_SOCKET = process.env.INCUS_SOCKET ?? '/var/lib/incus/unix.socket';

async function sweepWith(stateDir: string, make: (instance: string) => SandboxProvider): Promise<number> {
  const dbFile = join(stateDir, 'berth.db');
  if (!existsSync(dbFile)) return 0;
  const store = new Store(dbFile);
  const instance = store.instanceId();
  store.close();
  const provider = make(instance);
  const left = await provider.list();
  for (const s of left) await provider.removeSandbox(s.sandboxId);
  await provider.sweep?.();
  return left.length;
}

export function providerNodes(name: ProviderName, engine: string): ProviderNodes {
  if (name === 'incus') {
    if (!existsSync(INCUS_SOCKET))
      throw new Error(`--provider incus: no Incus socket at ${INCUS_SOCKET} (npm run runtime:up brings Incus up where it can run)`);
    const client = new IncusClient({ socketPath: INCUS_SOCKET });
    return {
      name,
      // As the Incus integration tests run it; the host's own name is the one egress name (no traffic off the machine).
      settings: { BERTH_PROVIDER: 'incus', BERTH_EGRESS_ALLOW: hostname() },
      nodePid: async (id, node) => {
        const state = await client.get<{ pid: number }>(`/1.0/instances/${instanceName(id, node)}/state`);
        if (!state.pid) throw new Error(`${instanceName(id, node)} is not running`);
        return state.pid;
      },
      sweep: (stateDir) => sweepWith(stateDir, (instance) => new IncusProvider({ client, image: 'unused', instance })),
      heldFor: async (which) => {
        const [key, value] = 'sandbox' in which ? [KEY.sandbox, which.sandbox] : [KEY.instance, which.instance];
        const all = await client.get<{ name: string; config: Record<string, string> }[]>('/1.0/instances?recursion=1');
        return all.filter((i) => i.config[key] === value).map((i) => i.name);
      },
    };
  }
  const docker = hostDocker(engine);
  return {
    name,
    settings: { BERTH_PROVIDER: 'docker' },
    nodePid: (id, node) => containerPid(docker, containerName(id, node)),
    heldFor: async (which) => {
      const label = 'sandbox' in which ? `berth.sandbox=${which.sandbox}` : `berth.instance=${which.instance}`;
      return (await docker(['ps', '-aq', '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
    },
    sweep: (stateDir) => {
      const disksDir = join(stateDir, 'disks');
      return sweepWith(
        stateDir,
        (instance) =>
          new LocalDockerProvider({ docker: connect(engine), image: 'unused', instance, disks: existsSync(disksDir) ? new LoopDisks(disksDir) : null }),
      );
    },
  };
}

/** The provider the test run was started with (BERTH_PROVIDER, docker by default), as tests/helpers/server.ts starts servers. */
export const testProviderNodes = (engine: string) => providerNodes((process.env.BERTH_PROVIDER as ProviderName | undefined) ?? 'docker', engine);

/** The memory limit (bytes) the kernel enforces on a node: its init's memory cgroup (v1), or memory.max (v2). */
export function nodeMemoryLimit(pid: number): string {
  const { dir, v1 } = memoryCgroupOfPid(pid);
  return readFileSync(join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8').trim();
}

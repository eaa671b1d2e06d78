// How a learner node container is run. Every option here is justified in runtime/engine/SECURITY.md.
import type Docker from 'dockerode';
import { LABEL } from './labels.ts';

export type Limits = { memoryBytes: number; nanoCpus: number; pids: number; diskBytes: number };

// Capabilities the entrypoint needs as root before it drops to uid 1000 for good.
export const ENGINE_CAPS = ['SYS_ADMIN', 'SETUID', 'SETGID', 'CHOWN', 'FOWNER', 'DAC_OVERRIDE'];

export type NodeSpec = {
  sandboxId: string;
  instance: string;
  node: string;
  image: string;
  network: string;
  mirror: string | null;
  /** Berth's DNS responder for this sandbox (its gateway), or null for Docker's default resolvers. */
  dns?: string | null;
  limits: Limits;
  /** This node's block of host ids (idBlock below): its learner uid and its sub-id range. */
  ids: { block: number; uid: number; subuidBase: number };
  /** Host path of this node's own file system for /home/learner, or null to use an anonymous volume. */
  home: string | null;
};

// Host ids per node, from its block k: the learner's uid and the 65536-id range its nested containers map to.
// - The learner's uid is LEARNER_UID_BASE + k. It must stay below 65536: the rootless engine runs in a user
//   namespace whose ids 1-65536 are the node's sub-ids, and `docker build` sends its context with the
//   client's uid in each tar header, which the engine then chowns to (measured: a uid above 65536 fails
//   with "lchown /Dockerfile: invalid argument"). 40000-54999 is above the accounts Debian hands out to
//   people and below its reserved 60000+; the server also skips any uid the host's /etc/passwd holds.
// - The sub-id range starts at 1.1e9 + k·65536: clear of host users and of the 1,000,000-1,001,000,000
//   range Debian's Incus package claims, and below 2^31 (ps and docker top print higher ids as negative).
export const ID_BLOCKS = 15_000;
const LEARNER_UID_BASE = 40_000;
const SUBID_BASE = 1_100_000_000;
export const idBlock = (block: number) => ({ block, uid: LEARNER_UID_BASE + block, subuidBase: SUBID_BASE + block * 65_536 });

export function containerName(sandboxId: string, node: string) {
  return `berth-${sandboxId}-${node}`;
}

export function nodeCreateOptions(s: NodeSpec): Docker.ContainerCreateOptions {
  return {
    name: containerName(s.sandboxId, s.node),
    Image: s.image,
    Hostname: s.node,
    Labels: {
      [LABEL.managed]: '1',
      [LABEL.role]: 'node',
      [LABEL.instance]: s.instance,
      [LABEL.sandbox]: s.sandboxId,
      [LABEL.node]: s.node,
      [LABEL.idBlock]: String(s.ids.block),
    },
    Env: [`BERTH_LEARNER_UID=${s.ids.uid}`, `BERTH_SUBUID_BASE=${s.ids.subuidBase}`, 'BERTH_REMOTE_API=1', ...(s.mirror ? [`BERTH_MIRROR=${s.mirror}`] : [])],
    StopSignal: 'SIGTERM',
    // Nodes of one session find each other by their short names (`docker -H tcp://node2:2375`, swarm join).
    NetworkingConfig: { EndpointsConfig: { [s.network]: { Aliases: [s.node] } } },
    HostConfig: {
      NetworkMode: s.network,
      // tini as PID 1 reaps orphans. Without it rootlesskit is PID 1, never reaps, and every orphaned process
      // of the learner (a fork bomb's thousands, a background job of a closed shell) stays a zombie that keeps
      // its slot in the pids limit for the rest of the session.
      Init: true,
      ...(s.dns ? { Dns: [s.dns] } : {}),
      CapDrop: ['ALL'],
      CapAdd: ENGINE_CAPS,
      SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
      // The API form of `--security-opt systempaths=unconfined`: nested engines must mount a fresh /proc.
      MaskedPaths: [],
      ReadonlyPaths: [],
      Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
      Memory: s.limits.memoryBytes,
      MemorySwap: s.limits.memoryBytes,
      NanoCpus: s.limits.nanoCpus,
      PidsLimit: s.limits.pids,
      // The engine's storage must not be overlay-on-overlay. With a node disk, the whole home (engine storage
      // included) is size-limited; without one, an anonymous volume goes away with the container.
      Mounts: s.home
        ? [{ Type: 'bind', Source: s.home, Target: '/home/learner' }]
        : [{ Type: 'volume', Source: '', Target: '/home/learner/.local/share/docker' }],
      // The other places uid 1000 can write are memory-backed and small, so they count against the memory limit.
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=256m,mode=1777', '/var/tmp': 'rw,nosuid,nodev,size=64m,mode=1777' },
      ShmSize: 64 * 1024 * 1024,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
      RestartPolicy: { Name: 'no' },
    },
  };
}

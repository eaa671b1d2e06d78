// SandboxProvider on one Docker engine: a bridge network per sandbox, a learner engine container per node.
import type Docker from 'dockerode';
import type { LoopDisks } from './disks.ts';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ApiError } from '../errors.ts';
import { connectPort } from './connect-port.ts';
import { engineError, isNotFound } from './docker.ts';
import { openTty, runCommand, streamCommand, type RunOptions } from './exec.ts';
import type { SandboxDns } from './dns.ts';
import { BRIDGE_PREFIX } from './firewall.ts';
import { capTcpMemory } from './tcp-memory.ts';
import { LABEL, networkFilter, sandboxFilter } from './labels.ts';
import { containerName, ID_BLOCKS, idBlock, nodeCreateOptions, type Limits } from './node-spec.ts';
import { type FoundSandbox, type NodeLimits, type SandboxProvider, withDefaults } from './provider.ts';

const READY_LINE = 'berth: engine ready';

/** A sandbox network's gateway: the host's address on its bridge, where Berth's DNS responder listens. */
const gatewayOf = (n: { IPAM?: { Config?: { Gateway?: string }[] } }) => n.IPAM?.Config?.[0]?.Gateway;
const MIRROR_CONTAINER = 'berth-mirror';

/** Uids of the host's own accounts (the server runs beside the engine it drives). */
function hostUids(): number[] {
  if (!existsSync('/etc/passwd')) return [];
  return readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => Number(l.split(':')[2]))
    .filter(Number.isInteger);
}

export type LocalDockerOptions = {
  docker: Docker;
  image: string;
  instance: string;
  disks?: LoopDisks | null;
  readyTimeoutMs?: number;
  /** Answers the sandboxes' DNS on their gateways (engine/dns.ts); null leaves them Docker's default. */
  dns?: SandboxDns | null;
};

export class LocalDockerProvider implements SandboxProvider {
  docker!: Docker;
  image!: string;
  instance!: string;
  disks!: LoopDisks | null;
  readyTimeoutMs!: number;
  dns!: SandboxDns | null;

  constructor(opts: LocalDockerOptions) {
    Object.assign(this, withDefaults(opts, { disks: null, readyTimeoutMs: 90_000, dns: null }));
  }

  networkName(sandboxId: string) {
    return `berth-net-${sandboxId}`;
  }

  async createSandbox(sandboxId: string, nodes: string[], limits: Limits) {
    try {
      await this.docker.createNetwork({
        Name: this.networkName(sandboxId),
        Driver: 'bridge',
        CheckDuplicate: true,
        // A known interface prefix lets one set of firewall rules cover every sandbox (engine/firewall.ts).
        Options: { 'com.docker.network.bridge.name': `${BRIDGE_PREFIX}${sandboxId}`.slice(0, 15) },
        Labels: { [LABEL.managed]: '1', [LABEL.role]: 'sandbox-net', [LABEL.instance]: this.instance, [LABEL.sandbox]: sandboxId },
      });
      await Promise.all(nodes.map((n) => this.addNode(sandboxId, n, limits)));
    } catch (err) {
      await this.removeSandbox(sandboxId); // never leave half a sandbox behind
      throw err instanceof ApiError ? err : engineError(err, 'Creating the sandbox');
    }
  }

  /** Connects the registry mirror to the sandbox network and returns the address the engine should use. */
  async mirrorFor(sandboxId: string): Promise<string | null> {
    const mirror = this.docker.getContainer(MIRROR_CONTAINER);
    const net = this.networkName(sandboxId);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await mirror.inspect();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    if (!info.State.Running) return null;
    if (!info.NetworkSettings.Networks[net]) {
      try {
        await this.docker.getNetwork(net).connect({ Container: MIRROR_CONTAINER, EndpointConfig: { Aliases: ['mirror'] } });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 403) throw err; // 403: already connected
      }
      info = await mirror.inspect();
    }
    const ip = info.NetworkSettings.Networks[net]?.IPAddress;
    return ip ? `${ip}:5000` : null;
  }

  /** Starts Berth's DNS responder on the sandbox network's gateway and returns that address for the nodes. */
  async dnsFor(sandboxId: string): Promise<string | null> {
    if (!this.dns) return null;
    const gateway = gatewayOf(await this.docker.getNetwork(this.networkName(sandboxId)).inspect());
    return gateway && (await this.dns.serve(gateway)) ? gateway : null;
  }

  /** After a restart: answer again on the gateways of the sandboxes a previous run left. */
  async restoreDns() {
    if (!this.dns) return;
    for (const n of await this.docker.listNetworks({ filters: networkFilter(this.instance) })) {
      const gateway = gatewayOf(n);
      if (gateway) await this.dns.serve(gateway);
    }
  }

  /** Blocks being handed out by this process right now (their containers may not exist yet). */
  reserved = new Set<number>();

  /**
   * A block of host ids no other node on this engine holds, whichever Berth instance made it: a random free
   * one, so two servers sharing an engine almost never race for the same block between list and create.
   */
  async freeIdBlock(): Promise<number> {
    const used = new Set(this.reserved);
    // A uid a host account already has is never a learner's.
    for (const uid of hostUids()) if (idBlock(0).uid <= uid && uid < idBlock(ID_BLOCKS).uid) used.add(uid - idBlock(0).uid);
    for (const c of await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=1`, `${LABEL.role}=node`] } })) {
      const b = Number(c.Labels[LABEL.idBlock]);
      if (Number.isInteger(b)) used.add(b);
    }
    if (used.size >= ID_BLOCKS) throw new ApiError(503, 'OUT_OF_CAPACITY', 'This Berth server has no host ids left for another node.');
    for (;;) {
      const b = randomInt(0, ID_BLOCKS);
      if (!used.has(b)) {
        this.reserved.add(b);
        return b;
      }
    }
  }

  async addNode(sandboxId: string, node: string, limits: Limits) {
    const [mirror, dns] = await Promise.all([this.mirrorFor(sandboxId), this.dnsFor(sandboxId)]);
    const name = containerName(sandboxId, node);
    const block = await this.freeIdBlock();
    try {
      const home = this.disks && limits.diskBytes > 0 ? await this.disks.create(name, limits.diskBytes) : null;
      const container = await this.docker.createContainer(
        nodeCreateOptions({
          sandboxId,
          instance: this.instance,
          node,
          image: this.image,
          network: this.networkName(sandboxId),
          mirror,
          dns,
          limits,
          home,
          // Its own learner uid and sub-id range per node: no kernel per-user account is shared between learners.
          ids: idBlock(block),
        }),
      );
      this.reserved.delete(block); // the container's label holds it from here
      await container.start();
      capTcpMemory((await container.inspect()).State.Pid, limits.memoryBytes);
      await this.waitReady(container);
    } catch (err) {
      this.reserved.delete(block);
      await this.removeNode(sandboxId, node);
      throw err;
    }
  }

  async waitReady(container: Docker.Container) {
    const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new ApiError(503, 'SANDBOX_FAILED', 'The learner engine did not start in time.'));
      }, this.readyTimeoutMs);
      stream.on('data', (b: Buffer) => {
        seen = (seen + b.toString('latin1')).slice(-4096);
        if (seen.includes(READY_LINE)) {
          clearTimeout(timer);
          stream.destroy();
          resolve();
        }
      });
      stream.on('end', () => {
        clearTimeout(timer);
        reject(new ApiError(503, 'SANDBOX_FAILED', 'The learner engine stopped while starting.'));
      });
      stream.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  async removeNode(sandboxId: string, node: string) {
    const name = containerName(sandboxId, node);
    try {
      await this.docker.getContainer(name).remove({ force: true, v: true });
    } catch (err) {
      if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 409) throw engineError(err, 'Removing the node');
    }
    await this.disks?.remove(name);
  }

  /** Disks whose node is gone (a crash between the steps of create or remove). */
  async sweep() {
    if (!this.disks) return 0;
    const live = new Set((await this.docker.listContainers({ all: true, filters: sandboxFilter(this.instance) })).map((c) => c.Names[0]?.slice(1)));
    const stray = this.disks.list().filter((n) => !live.has(n));
    for (const n of stray) await this.disks.remove(n);
    return stray.length;
  }

  async removeSandbox(sandboxId: string) {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.sandbox}=${sandboxId}`, `${LABEL.role}=node`] } });
    await Promise.all(containers.map((c) => this.removeNode(sandboxId, c.Labels[LABEL.node])));
    const net = this.docker.getNetwork(this.networkName(sandboxId));
    if (this.dns) {
      try {
        const gateway = gatewayOf(await net.inspect());
        if (gateway) this.dns.stop(gateway);
      } catch {
        /* the network is already gone */
      }
    }
    try {
      await net.disconnect({ Container: MIRROR_CONTAINER, Force: true });
    } catch {
      /* mirror absent or not connected */
    }
    try {
      await net.remove();
    } catch (err) {
      if (!isNotFound(err)) throw engineError(err, 'Removing the sandbox network');
    }
  }

  async list(): Promise<FoundSandbox[]> {
    const by = new Map<string, FoundSandbox>();
    for (const c of await this.docker.listContainers({ all: true, filters: sandboxFilter(this.instance) })) {
      const id = c.Labels[LABEL.sandbox];
      const entry = by.get(id) ?? { sandboxId: id, nodes: [], running: true };
      entry.nodes.push(c.Labels[LABEL.node]);
      entry.running &&= c.State === 'running';
      by.set(id, entry);
    }
    // Networks left without nodes (a crash between the two steps) are sandboxes too.
    for (const n of await this.docker.listNetworks({ filters: networkFilter(this.instance) })) {
      const id = n.Labels?.[LABEL.sandbox];
      if (id && !by.has(id)) by.set(id, { sandboxId: id, nodes: [], running: false });
    }
    return [...by.values()];
  }

  container(sandboxId: string, node: string) {
    return this.docker.getContainer(containerName(sandboxId, node));
  }

  async updateLimits(sandboxId: string, node: string, l: NodeLimits) {
    try {
      await this.container(sandboxId, node).update({ Memory: l.memoryBytes, MemorySwap: l.memoryBytes, NanoCpus: l.nanoCpus, PidsLimit: l.pids });
    } catch (err) {
      throw engineError(err, 'Applying the workshop limits');
    }
  }

  /** Memory a node holds that the host cannot reclaim: usage minus inactive page cache (what `docker stats` shows). */
  async nodeMemory(sandboxId: string, node: string): Promise<number> {
    const s = await this.container(sandboxId, node).stats({ stream: false });
    const m = s.memory_stats;
    const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
    return Math.max(0, m.usage - inactive);
  }

  async nodeDiskBytes(sandboxId: string, node: string): Promise<number | null> {
    return (await this.disks?.used(containerName(sandboxId, node))) ?? null;
  }

  async run(sandboxId: string, node: string, cmd: string, opts: RunOptions) {
    try {
      return await runCommand(this.container(sandboxId, node), cmd, opts);
    } catch (err) {
      throw err instanceof ApiError ? err : engineError(err, 'Running the command');
    }
  }

  /** The node container's init as the host sees it; its cgroup path names the container's id. */
  async nodeInit(sandboxId: string, node: string) {
    const info = await this.container(sandboxId, node).inspect();
    return info.State.Running && info.State.Pid > 0 ? { pid: info.State.Pid, cgroup: info.Id } : null;
  }

  async openTty(sandboxId: string, node: string, cmd: string[], size: { cols: number; rows: number }) {
    try {
      return await openTty(this.container(sandboxId, node), cmd, size);
    } catch (err) {
      throw engineError(err, 'Opening the terminal');
    }
  }

  async nodeAddress(sandboxId: string, node: string) {
    try {
      const info = await this.container(sandboxId, node).inspect();
      return info.NetworkSettings.Networks[this.networkName(sandboxId)]?.IPAddress || null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw engineError(err, 'Finding the node');
    }
  }

  async openPort(sandboxId: string, node: string, port: number) {
    const ip = await this.nodeAddress(sandboxId, node);
    if (!ip) throw new ApiError(502, 'PREVIEW_UNREACHABLE', `Node ${node} has no address right now.`);
    return connectPort(ip, port);
  }

  async streamOut(sandboxId: string, node: string, cmd: string) {
    try {
      return await streamCommand(this.container(sandboxId, node), cmd);
    } catch (err) {
      throw engineError(err, 'Running the command');
    }
  }
}

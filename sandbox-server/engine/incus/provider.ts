// SandboxProvider on Incus: one managed bridge per session, one system container per node, each with its
// own id range and a rootful Docker inside (issue 14). All Incus access goes through IncusClient.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApiError } from '../../errors.ts';
import { connectPort } from '../connect-port.ts';
import type { SandboxDns } from '../dns.ts';
import type { RunOptions } from '../exec.ts';
import type { Limits } from '../node-spec.ts';
import {
  type Drain,
  type FoundSandbox,
  type LostSandbox,
  type Machine,
  type MachineResources,
  type NodeLimits,
  type SandboxProvider,
  withDefaults,
} from '../provider.ts';
import { IncusError } from './api.ts';
import type { IncusClient } from './client.ts';
import { doneByAnother, incusError, isNotFound, MEMBER_AWAY, memberAway, withRetry } from './errors.ts';
import { openTty, runCommand, streamCommand } from './exec.ts';
import { daemonJson, hostsFile, nodeEnv, upstreamResolver } from './node-files.ts';
import { clusterMembers } from './cluster.ts';
import { PortError, relayPort } from './relay.ts';
import { locationOf, memberList, setMemberDrain } from './drain.ts';
import {
  bridgeName,
  filterQuery,
  instanceBody,
  instanceName,
  KEY,
  networkBody,
  nodeIp,
  onMember,
  parseInstanceName,
  pendingNetworkBody,
  SUBNET_POOL,
  subnetAt,
  subnetIndexOf,
  type Subnet,
} from './spec.ts';

/** `location`: the cluster member holding the instance ("none" on a single server). */
type InstanceInfo = { name: string; status: string; location?: string; config: Record<string, string>; devices?: Record<string, Record<string, string>> };
type NetworkInfo = { name: string; config: Record<string, string> };

export type IncusProviderOptions = {
  client: IncusClient;
  /** Image alias of the learner node (runtime/incus). */
  image: string;
  /** Profile every node starts from; its root disk names the storage pool. */
  profile?: string;
  /** This Berth server's id: only its own sessions are listed and adopted. */
  instance: string;
  /** Berth's DNS responder on each session's gateway; null: the bridge's own dnsmasq answers. */
  dns?: SandboxDns | null;
  /** Host loopback port of the registry mirror, proxied onto each node's loopback; null for none. */
  mirrorPort?: number | null;
  readyTimeoutMs?: number;
  /**
   * Bridges kept ready on a cluster while every member is there (reserveBridges), for sessions made while one
   * is away: Incus makes a managed network only with every member there. 0: none.
   */
  spareBridges?: number;
  /**
   * A fleet (a cluster, or a remote Incus): the cluster group sessions are placed in (cluster.ts GROUP, kept by
   * the server to the members ready for learners); null: wherever Incus's scheduler likes (a single machine).
   */
  placementGroup?: string | null;
  /** The member agents answer DNS on each session's gateway (a fleet whose egress policy is not open). */
  agentDns?: boolean;
  /**
   * How previews reach a node's port (openPort): 'auto' connects to the node's address where its bridge is routed
   * from this server (the bridge is an interface here and, on a cluster, the node is on this member) and relays
   * through an Incus exec elsewhere; 'always' relays every connection.
   */
  previewRelay?: 'auto' | 'always';
};

const READY_FILE = '/run/berth-ready';

/** Incus's answer to a second create of a network that exists on some members only (seen on a cluster test run). */
const PARTIALLY_CREATED = /Network already partially created/;

/** A fact asked of incusd once and kept; a failed ask is asked again the next time. */
function askedOnce<T>(ask: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () =>
    (kept ??= ask().catch((err) => {
      kept = undefined;
      throw err;
    }));
}

/** While creating, "not found" is the image or the profile missing: the create failed, nothing the learner had is gone. */
const createError = (err: unknown, what: string) =>
  isNotFound(err) ? new ApiError(502, 'SANDBOX_FAILED', `${what} failed in the container engine.`, err) : incusError(err, what);

export class IncusProvider implements SandboxProvider {
  client!: IncusClient;
  image!: string;
  profile!: string;
  instance!: string;
  dns!: SandboxDns | null;
  mirrorPort!: number | null;
  readyTimeoutMs!: number;
  /** Subnets of sessions, and indexes handed out but whose bridge may not exist yet (creates run concurrently). */
  subnets = new Map<string, Subnet>();
  reserved = new Set<number>();
  /** Every network on incusd by name, with its subnet's index in the pool (null: outside it); see allocateSubnet. */
  addresses = new Map<string, number | null>();
  spareBridges!: number;
  /** Each session's bridge as far as known: its own (bridgeName) or a spare (made ahead, not named after it). */
  bridges = new Map<string, string>();
  placementGroup!: string | null;
  agentDns!: boolean;
  previewRelay!: 'auto' | 'always';

  constructor(opts: IncusProviderOptions) {
    Object.assign(
      this,
      withDefaults(opts, {
        profile: 'berth',
        dns: null,
        mirrorPort: 5000,
        readyTimeoutMs: 90_000,
        spareBridges: 0,
        placementGroup: null,
        agentDns: false,
        previewRelay: 'auto' as const,
      }),
    );
  }

  /** The storage pool of the profile's root disk: a node's root device must name it to carry a size. */
  storagePool = askedOnce(() =>
    this.client
      .get<{ devices?: Record<string, Record<string, string>> }>(`/1.0/profiles/${encodeURIComponent(this.profile)}`)
      .then((p) => Object.values(p.devices ?? {}).find((d) => d.type === 'disk' && d.path === '/')?.pool ?? null),
  );

  /** The member incusd's socket belongs to; "none" on a single server. */
  localMember = askedOnce(() => this.client.get<{ environment?: { server_name?: string } }>('/1.0').then((s) => s.environment?.server_name ?? 'none'));

  /** Whether incusd is a cluster member: placement and networks then take a member. */
  clustered = askedOnce(() => this.client.get<{ environment?: { server_clustered?: boolean } }>('/1.0').then((s) => s.environment?.server_clustered === true));

  // Listings ask incusd for this server's objects only (filter=): a recursive listing of everything costs incusd
  // work for every learner's node and bridge on the host (a network's used_by, an instance's state). The same
  // test runs here again, so an incusd that ignored the filter would still give the right answer.
  async networks(): Promise<NetworkInfo[]> {
    const all = await this.client.get<NetworkInfo[]>(
      `/1.0/networks?recursion=1&${filterQuery({ [`config.${KEY.managed}`]: '1', [`config.${KEY.instance}`]: this.instance })}`,
    );
    return all.filter((n) => n.config?.[KEY.managed] === '1' && n.config[KEY.instance] === this.instance);
  }

  async instances(sandboxId?: string): Promise<InstanceInfo[]> {
    const match: Record<string, string> = { [`config.${KEY.managed}`]: '1', [`config.${KEY.role}`]: 'node', [`config.${KEY.instance}`]: this.instance };
    if (sandboxId !== undefined) match[`config.${KEY.sandbox}`] = sandboxId;
    const all = await this.client.get<InstanceInfo[]>(`/1.0/instances?recursion=1&${filterQuery(match)}`);
    return all.filter(
      (i) =>
        i.config?.[KEY.managed] === '1' &&
        i.config[KEY.role] === 'node' &&
        i.config[KEY.instance] === this.instance &&
        (sandboxId === undefined || i.config[KEY.sandbox] === sandboxId),
    );
  }

  /**
   * A free /26 of the pool: neither a bridge's on this host (this server's or another's on the same incusd)
   * nor one being created right now. Incus computes every network's `used_by` for a recursive listing, which
   * made each create slower as sessions accumulated (0.7 s for 66 networks against 10 ms for the names), so
   * only the names are listed and a network's address is asked once, when its name is new.
   */
  async allocateSubnet(): Promise<Subnet> {
    const names = new Set((await this.client.get<string[]>('/1.0/networks')).map((u) => decodeURIComponent(u.slice(u.lastIndexOf('/') + 1))));
    for (const name of this.addresses.keys()) if (!names.has(name)) this.addresses.delete(name);
    await Promise.all(
      [...names]
        .filter((name) => !this.addresses.has(name))
        .map(async (name) => {
          try {
            const n = await this.client.get<NetworkInfo>(`/1.0/networks/${encodeURIComponent(name)}`);
            this.addresses.set(name, subnetIndexOf(n.config?.['ipv4.address']));
          } catch (err) {
            if (!isNotFound(err)) throw err; // deleted meanwhile: its subnet is free
          }
        }),
    );
    const used = new Set([...this.reserved, ...[...this.addresses.values()].filter((i) => i !== null)]);
    if (used.size >= SUBNET_POOL.count) throw new ApiError(503, 'OUT_OF_CAPACITY', 'This Berth server has no room for another session right now.');
    let index: number;
    do index = Math.floor(Math.random() * SUBNET_POOL.count);
    while (used.has(index));
    this.reserved.add(index);
    return subnetAt(index);
  }

  /**
   * The session's bridge: its own (bridgeName), or the spare it took while a member was away, which its nodes'
   * NIC names (so a restarted server finds it again).
   */
  async bridgeOf(sandboxId: string): Promise<string> {
    const known = this.bridges.get(sandboxId);
    if (known) return known;
    const own = bridgeName(sandboxId);
    if (!this.spareBridges) return own;
    const net = (await this.instances(sandboxId).catch(() => []))[0]?.devices?.eth0?.network;
    if (net && net !== own) this.bridges.set(sandboxId, net);
    return net || own;
  }

  /** Spare bridges not taken by a session (none of this server's nodes on them). */
  async freeSpares(): Promise<string[]> {
    const spares = (await this.networks()).filter((n) => n.config[KEY.role] === 'spare-net').map((n) => n.name);
    if (!spares.length) return [];
    const used = new Set([...this.bridges.values(), ...(await this.instances()).map((i) => i.devices?.eth0?.network)]);
    return spares.filter((n) => !used.has(n));
  }

  /**
   * Keeps `spareBridges` free spare bridges on a cluster while every member is online (they cannot be made
   * otherwise); returns how many were made.
   */
  async reserveBridges(): Promise<number> {
    if (!this.spareBridges || !(await this.clustered())) return 0;
    if (((await clusterMembers(this.client)) ?? []).some((m) => m.status !== 'Online')) return 0;
    let made = 0;
    for (let free = (await this.freeSpares()).length; free < this.spareBridges; free++, made++) {
      await this.makeBridge(`sp${randomBytes(5).toString('hex')}`, true);
    }
    return made;
  }

  /** Defines the bridge on every member, then creates it (a cluster), or creates it (a single server). */
  async makeBridge(id: string, spare: boolean): Promise<Subnet> {
    const subnet = await this.allocateSubnet();
    try {
      if (await this.clustered()) {
        for (const m of (await clusterMembers(this.client)) ?? []) {
          await withRetry(() => this.client.run('POST', onMember('/1.0/networks', m.name), pendingNetworkBody(id)));
        }
      }
      const body = networkBody({ sandboxId: id, instance: this.instance, subnet, berthDns: !!this.dns || this.agentDns, spare });
      await withRetry(async () => {
        try {
          await this.client.run('POST', '/1.0/networks', body);
        } catch (err) {
          // A cluster-wide create that failed on some member (a transient failure, retried here) is run again
          // without its global config, which Incus already holds: with it, Incus refuses the second run.
          if (!(err instanceof IncusError && PARTIALLY_CREATED.test(err.message))) throw err;
          await this.client.run('POST', '/1.0/networks', { name: body.name, type: body.type });
        }
      });
      this.addresses.set(bridgeName(id), subnet.index);
      return subnet;
    } finally {
      this.reserved.delete(subnet.index);
    }
  }

  /** A free spare bridge for the session, or null. */
  async takeSpare(sandboxId: string): Promise<string | null> {
    const free = await this.freeSpares();
    // Taken in the same turn as it is found free: concurrent creates do not share one.
    const taken = new Set(this.bridges.values());
    const spare = free.find((n) => !taken.has(n));
    if (spare) this.bridges.set(sandboxId, spare);
    return spare ?? null;
  }

  async subnetOf(sandboxId: string): Promise<Subnet> {
    const known = this.subnets.get(sandboxId);
    if (known) return known;
    const n = await this.client.get<NetworkInfo>(`/1.0/networks/${await this.bridgeOf(sandboxId)}`);
    const index = subnetIndexOf(n.config?.['ipv4.address']);
    if (index === null) throw new IncusError(500, `network ${n.name} has no address from the pool`);
    const s = subnetAt(index);
    this.subnets.set(sandboxId, s);
    return s;
  }

  /**
   * The resolver nodes use: Berth's responder on the gateway. Without it (egress policy open, or no firewall)
   * the host's own upstream resolver, which open egress reaches; the firewall refuses the gateway's port 53
   * then. A loopback resolver on the host is out of a node's reach: the bridge's dnsmasq on the gateway.
   */
  resolverFor(subnet: Subnet): string {
    // A remote member's (or any member's in a fleet) resolver is not in this host's resolv.conf: its bridge's
    // dnsmasq (or its member agent's responder) on the gateway.
    if (this.dns || this.agentDns || this.placementGroup || this.client.remote) return subnet.gateway;
    let text = '';
    try {
      text = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* none: the gateway */
    }
    return upstreamResolver(text) ?? subnet.gateway;
  }

  async serveDns(subnet: Subnet) {
    if (this.dns) await this.dns.serve(subnet.gateway);
  }

  async createSandbox(sandboxId: string, nodes: string[], limits: Limits, { forLearner = false }: { forLearner?: boolean } = {}) {
    try {
      let subnet: Subnet;
      // A member away: Incus cannot make the session's bridge (MEMBER_AWAY), so a spare made ahead is taken; with
      // none, nothing is asked of Incus (a try would leave an errored network record until the member is back).
      const away = (await this.clustered()) && ((await clusterMembers(this.client)) ?? []).some((m) => m.status === 'Offline');
      // Spares are kept for learners: the warm pool and measurements never take one.
      const spare = async () => forLearner && this.spareBridges > 0 && (await this.takeSpare(sandboxId)) !== null;
      if (away) {
        if (!(await spare())) throw memberAway();
        subnet = await this.subnetOf(sandboxId);
      } else {
        try {
          subnet = await this.makeBridge(sandboxId, false);
          this.bridges.set(sandboxId, bridgeName(sandboxId));
        } catch (err) {
          // Not yet declared offline, but not answering: the same, found out by trying.
          if (!(err instanceof IncusError && MEMBER_AWAY.test(err.message) && (await spare()))) throw err;
          subnet = await this.subnetOf(sandboxId);
        }
        this.subnets.set(sandboxId, subnet);
      }
      await this.serveDns(subnet);
      await this.startNodes(sandboxId, nodes, limits);
    } catch (err) {
      await this.removeSandbox(sandboxId).catch(() => {
        /* the original error is the one to report */
      });
      throw createError(err, 'Creating the sandbox');
    }
  }

  /**
   * Starts a session's nodes at once. In a cluster every node must be on one member, the one holding the
   * session's bridge traffic (a bridge exists on each member, but only nodes on the same member share it):
   * node1 goes where Incus's scheduler puts it, and the others are aimed at its member as soon as it has one.
   */
  async startNodes(sandboxId: string, nodes: string[], limits: Limits) {
    if (nodes.length < 2 || !(await this.clustered())) {
      await Promise.all(nodes.map((n) => this.startNode(sandboxId, n, limits, nodes)));
      return;
    }
    const [first, ...rest] = nodes;
    let placed!: (member: string) => void;
    let unplaced!: (err: unknown) => void;
    const member = new Promise<string>((resolve, reject) => {
      placed = resolve;
      unplaced = reject;
    });
    member.catch(() => {
      /* reported by node1's own start */
    });
    await Promise.all([
      this.startNode(sandboxId, first, limits, nodes, null, placed).catch((err) => {
        unplaced(err);
        throw err;
      }),
      ...rest.map(async (n) => this.startNode(sandboxId, n, limits, nodes, await member)),
    ]);
  }

  async addNode(sandboxId: string, node: string, limits: Limits) {
    try {
      const found = await this.instances(sandboxId);
      const peers = found.map((i) => i.config[KEY.node]);
      // On the member of the session's other nodes (the first found; all are on one).
      const member = (await this.clustered()) ? (found[0]?.location ?? null) : null;
      await this.startNode(sandboxId, node, limits, [...peers, node], member);
      await this.writeHosts(sandboxId, peers, [...peers, node]);
    } catch (err) {
      throw createError(err, 'Adding the node');
    }
  }

  /**
   * Creates, configures and starts one node, on `member` when given (a cluster; else where Incus places it);
   * `onPlaced` learns the member it was created on. Removes the node again when any step fails.
   */
  async startNode(sandboxId: string, node: string, limits: Limits, all: string[], member: string | null = null, onPlaced?: (member: string) => void) {
    const subnet = await this.subnetOf(sandboxId);
    const name = instanceName(sandboxId, node);
    const ip = nodeIp(subnet, node);
    try {
      await this.client.run(
        'POST',
        // Not aimed at a member: among the group's members (a fleet), else anywhere Incus likes.
        onMember('/1.0/instances', member ?? (this.placementGroup ? `@${this.placementGroup}` : null)),
        instanceBody({
          sandboxId,
          instance: this.instance,
          node,
          image: this.image,
          profile: this.profile,
          pool: await this.storagePool(),
          network: await this.bridgeOf(sandboxId),
          limits,
          mirrorPort: this.mirrorPort,
        }),
      );
      if (onPlaced) onPlaced((await this.client.get<InstanceInfo>(`/1.0/instances/${name}`)).location ?? '');
      const config = { node, ip, prefix: subnet.prefix, gateway: subnet.gateway, dns: this.resolverFor(subnet), mirrorPort: this.mirrorPort };
      // Written while the node is stopped, so its init finds them on the first boot.
      await this.client.mkdir(name, '/etc/berth');
      await this.client.writeFile(name, '/etc/berth/node.env', nodeEnv(config));
      await this.client.writeFile(name, '/etc/docker/daemon.json', daemonJson(config));
      await this.client.writeFile(name, '/etc/hosts', hostsFile(all.map((n) => ({ node: n, ip: nodeIp(subnet, n) }))));
      await withRetry(() => this.client.run('PUT', `/1.0/instances/${name}/state`, { action: 'start', timeout: 30 }));
      await this.waitReady(name);
    } catch (err) {
      await this.deleteInstance(name).catch(() => {
        /* the original error is the one to report */
      });
      throw err;
    }
  }

  /** Waits for the init's ready file (written once `docker version` answers); the file API needs no exec. */
  async waitReady(name: string) {
    const until = Date.now() + this.readyTimeoutMs;
    for (let pause = 50; ; pause = Math.min(pause * 2, 250)) {
      const res = await this.client.http('GET', `/1.0/instances/${name}/files?path=${encodeURIComponent(READY_FILE)}`);
      if (res.status === 200) return;
      if (res.status !== 404) throw new IncusError(res.status, `reading ${READY_FILE}: ${res.body.toString('utf8').slice(0, 300)}`);
      if (Date.now() > until) throw new ApiError(503, 'SANDBOX_FAILED', 'The learner engine did not start in time.');
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  /** Rewrites /etc/hosts on `targets` (running nodes) so they name exactly the session's `all` nodes. */
  async writeHosts(sandboxId: string, targets: string[], all: string[]) {
    const subnet = await this.subnetOf(sandboxId);
    const text = hostsFile(all.map((n) => ({ node: n, ip: nodeIp(subnet, n) })));
    await Promise.all(
      targets.map((n) =>
        this.client.writeFile(instanceName(sandboxId, n), '/etc/hosts', text).catch((err) => {
          if (!isNotFound(err)) throw err;
        }),
      ),
    );
  }

  async deleteInstance(name: string) {
    try {
      await this.client.run('PUT', `/1.0/instances/${name}/state`, { action: 'stop', force: true, timeout: 30 });
    } catch (err) {
      if (isNotFound(err)) return;
      if (!doneByAnother(err) && !(err instanceof IncusError && /not running|already stopped/i.test(err.message))) throw err;
    }
    try {
      await this.client.run('DELETE', `/1.0/instances/${name}`);
    } catch (err) {
      if (!isNotFound(err) && !doneByAnother(err)) throw err;
    }
  }

  async removeNode(sandboxId: string, node: string) {
    try {
      await this.deleteInstance(instanceName(sandboxId, node));
      const rest = (await this.instances(sandboxId)).map((i) => i.config[KEY.node]);
      await this.writeHosts(sandboxId, rest, rest);
    } catch (err) {
      if (isNotFound(err)) return;
      throw incusError(err, 'Removing the node');
    }
  }

  async removeSandbox(sandboxId: string) {
    try {
      const bridge = await this.bridgeOf(sandboxId);
      const subnet = await this.subnetOf(sandboxId).catch((err) => {
        if (isNotFound(err)) return null;
        throw err;
      });
      await Promise.all((await this.instances(sandboxId)).map((i) => this.deleteInstance(i.name)));
      if (subnet) this.dns?.stop(subnet.gateway);
      if (bridge !== bridgeName(sandboxId)) {
        // A spare: free again once its nodes are gone, for the next session while the member is away.
        this.bridges.delete(sandboxId);
        this.subnets.delete(sandboxId);
      }
      // Removing a bridge races with its veths going away like creating one does (the same transient error).
      try {
        await withRetry(() => this.client.run('DELETE', `/1.0/networks/${bridgeName(sandboxId)}`));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.subnets.delete(sandboxId);
      this.bridges.delete(sandboxId);
    } catch (err) {
      throw incusError(err, 'Removing the sandbox');
    }
  }

  /**
   * Sessions on cluster members Incus reports Offline (it does so once a member missed heartbeats for
   * cluster.offline_threshold, 20 s by default). Every member online costs one request for the members, no
   * listing. Other servers' sessions on the same cluster may be among them.
   */
  async lostSandboxes(): Promise<Map<string, LostSandbox>> {
    if (!(await this.clustered())) return new Map();
    const offline = ((await clusterMembers(this.client)) ?? []).filter((m) => m.status === 'Offline').map((m) => m.name);
    const lost = new Map<string, LostSandbox>();
    for (const member of offline) for (const [id, l] of await this.unreachable({ location: member })) lost.set(id, l);
    return lost;
  }

  /**
   * Sessions with nodes Incus could not reach. For a member that is offline, or whose daemon does not answer
   * (before it is declared offline), Incus lists the instances from its database with name, location and
   * status Error only, no config (cmd/incusd/instances_get.go): a filter on Berth's config keys drops them, so
   * they are found by `match` and their names instead.
   */
  async unreachable(match: Record<string, string>): Promise<Map<string, LostSandbox>> {
    const found = await this.client.get<InstanceInfo[]>(`/1.0/instances?recursion=1&${filterQuery(match)}`);
    const by = new Map<string, LostSandbox>();
    for (const i of found) {
      const p = parseInstanceName(i.name);
      if (!p || i.status !== 'Error' || Object.keys(i.config ?? {}).length > 0) continue;
      const entry = by.get(p.sandboxId) ?? { member: i.location ?? '', nodes: [] };
      entry.nodes.push(p.node);
      by.set(p.sandboxId, entry);
    }
    return by;
  }

  async machineAway(sandboxId: string): Promise<string | null> {
    if (!(await this.clustered())) return null;
    return (await this.unreachable({ name: instanceName(sandboxId, 'node1') })).get(sandboxId)?.member ?? null;
  }

  async list(): Promise<FoundSandbox[]> {
    const by = new Map<string, FoundSandbox>();
    // Sessions on a member that went away (or whose daemon does not answer) are still there, lost, not gone;
    // their bridge, a cluster-wide network, says they are this server's.
    const [lost, ours] = await Promise.all([
      this.clustered().then((c) => (c ? this.unreachable({ status: 'Error' }) : new Map<string, LostSandbox>())),
      this.networks(),
    ]);
    // (A session on a spare bridge is known by this process only; after a restart it is found once it answers.)
    const mine = new Set([...ours.map((n) => n.config[KEY.sandbox]), ...this.bridges.keys()]);
    for (const [id, l] of lost) if (mine.has(id)) by.set(id, { sandboxId: id, nodes: [...l.nodes].sort(), running: false, lost: l.member });
    for (const i of await this.instances()) {
      if (by.get(i.config[KEY.sandbox])?.lost) continue;
      const id = i.config[KEY.sandbox];
      const entry = by.get(id) ?? { sandboxId: id, nodes: [], running: true };
      entry.nodes.push(i.config[KEY.node]);
      entry.running &&= i.status === 'Running';
      by.set(id, entry);
    }
    // Bridges left without nodes (a crash between the steps) are sandboxes too, so they get removed.
    for (const n of ours) {
      const id = n.config[KEY.sandbox];
      if (id && !by.has(id)) by.set(id, { sandboxId: id, nodes: [], running: false });
    }
    return [...by.values()];
  }

  /** After a restart: answer DNS again on the gateways of the sessions a previous run left. */
  async restoreDns() {
    if (!this.dns) return;
    for (const n of await this.networks()) {
      const index = subnetIndexOf(n.config['ipv4.address']);
      if (index !== null) await this.dns.serve(subnetAt(index).gateway);
    }
  }

  async run(sandboxId: string, node: string, cmd: string, opts: RunOptions) {
    try {
      return await runCommand(this.client, instanceName(sandboxId, node), cmd, opts);
    } catch (err) {
      throw incusError(err, 'Running the command');
    }
  }

  async streamOut(sandboxId: string, node: string, cmd: string) {
    try {
      return await streamCommand(this.client, instanceName(sandboxId, node), cmd);
    } catch (err) {
      throw incusError(err, 'Running the command');
    }
  }

  /** The node's init as this host sees it; liblxc names the node's cgroup lxc.payload.<instance>. Null for a
   *  remote Incus: the pid is another machine's (terminals then attach through exec). */
  async nodeInit(sandboxId: string, node: string) {
    if (this.client.remote) return null;
    const name = instanceName(sandboxId, node);
    // In a fleet only a node on this machine's own member has its processes here.
    if (this.placementGroup && (await this.client.get<InstanceInfo>(`/1.0/instances/${name}`)).location !== (await this.localMember())) return null;
    const state = await this.client.get<{ pid?: number; status?: string }>(`/1.0/instances/${name}/state`);
    return state.pid && state.pid > 0 ? { pid: state.pid, cgroup: `lxc.payload.${name}` } : null;
  }

  async openTty(sandboxId: string, node: string, cmd: string[], size: { cols: number; rows: number }) {
    try {
      return await openTty(this.client, instanceName(sandboxId, node), cmd, size);
    } catch (err) {
      throw incusError(err, 'Opening the terminal');
    }
  }

  /** Workshops tighten a pool node's limits in place: Incus applies config changes to a running node live. */
  async updateLimits(sandboxId: string, node: string, l: NodeLimits) {
    const { config } = instanceBody({
      sandboxId,
      instance: this.instance,
      node,
      image: this.image,
      profile: this.profile,
      pool: null,
      network: '',
      limits: { ...l, diskBytes: 0 },
      mirrorPort: null,
    });
    const limits = Object.fromEntries(Object.entries(config).filter(([k]) => k.startsWith('limits.')));
    // limits.cpu (cpuset pinning) is cleared where an older node still has it (spec.ts says why).
    try {
      await this.client.run('PATCH', `/1.0/instances/${instanceName(sandboxId, node)}`, { config: { 'limits.cpu': '', ...limits } });
    } catch (err) {
      throw incusError(err, 'Applying the workshop limits');
    }
  }

  /** Memory a node holds that the host cannot reclaim: usage minus inactive page cache, from its host cgroup. */
  async nodeMemory(sandboxId: string, node: string): Promise<number> {
    const name = instanceName(sandboxId, node);
    try {
      if (this.client.remote) throw new Error("the node's cgroup is on another machine");
      const stat = await readFile(`/sys/fs/cgroup/memory/lxc.payload.${name}/memory.stat`, 'utf8');
      const get = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
      return Math.max(0, get('total_rss') + get('total_cache') - get('total_inactive_file'));
    } catch {
      // Not a cgroup v1 host, or incusd elsewhere (remote, or the node on another member): Incus's own figure, page cache included.
      const st = await this.client.get<{ memory?: { usage?: number } }>(`/1.0/instances/${name}/state`).catch((err) => {
        throw incusError(err, 'Measuring the node');
      });
      return st.memory?.usage ?? 0;
    }
  }

  /**
   * A remote server's or each online cluster member's CPUs, memory and free space in the nodes' storage pool,
   * from Incus's resources API (its memory `used` counts page cache as free, as MemAvailable roughly does).
   * Null for a local single server: the host's own figures are finer.
   */
  async machines(): Promise<MachineResources[] | null> {
    try {
      const members = (await this.clustered()) ? await clusterMembers(this.client) : null;
      if (!members && !this.client.remote) return null;
      // In a fleet, the machines that take learners: the placement group's (cluster.ts), not every member.
      const placing = this.placementGroup
        ? new Set((await this.client.get<{ members?: string[] }>(`/1.0/cluster/groups/${this.placementGroup}`)).members)
        : null;
      const online = members ? members.filter((m) => m.status === 'Online' && (!placing || placing.has(m.name))).map((m) => m.name) : [null];
      const pool = await this.storagePool();
      return await Promise.all(
        online.map(async (member) => {
          const r = await this.client.get<{ cpu?: { total?: number }; memory?: { total?: number; used?: number } }>(onMember('/1.0/resources', member));
          const space = pool
            ? (
                await this.client.get<{ space?: { total?: number; used?: number } }>(
                  onMember(`/1.0/storage-pools/${encodeURIComponent(pool)}/resources`, member),
                )
              ).space
            : undefined;
          const total = r.memory?.total ?? 0;
          return {
            name: member ?? new URL(this.client.origin ?? 'https://incus').hostname,
            cpus: r.cpu?.total ?? 0,
            memoryTotal: total,
            memoryAvailable: Math.max(0, total - (r.memory?.used ?? total)),
            diskFree: space?.total ? Math.max(0, space.total - (space.used ?? 0)) : null,
          };
        }),
      );
    } catch (err) {
      throw incusError(err, 'Measuring the Incus machines');
    }
  }

  // Planned maintenance (drain.ts): members with their drain marks, where a session is, marking a member.
  machineList(): Promise<Machine[] | null> {
    return memberList(this.client).catch((err) => {
      throw incusError(err, 'Listing the Incus machines');
    });
  }
  async machineOf(sandboxId: string): Promise<string | null> {
    return (await this.clustered()) ? locationOf(this.client, instanceName(sandboxId, 'node1')) : null;
  }
  setDrain(machine: string, drain: Drain | null): Promise<void> {
    return setMemberDrain(this.client, machine, drain).catch((err) => {
      throw incusError(err, `Marking machine ${machine}`);
    });
  }

  /** Host disk the node's root holds in the pool (btrfs qgroup usage, as Incus reports it); null when unknown. */
  async nodeDiskBytes(sandboxId: string, node: string): Promise<number | null> {
    const st = await this.client.get<{ disk?: Record<string, { usage?: number }> }>(`/1.0/instances/${instanceName(sandboxId, node)}/state`).catch((err) => {
      throw incusError(err, 'Measuring the node');
    });
    return st.disk?.root?.usage ?? null;
  }

  /**
   * Free space in the storage pool new nodes go to: the pool's size less what it holds. A pool on a sparse loop
   * file can also run out when the file system holding the file does, so the smaller of the two.
   */
  async freeDiskBytes(): Promise<number | null> {
    const pool = await this.storagePool();
    if (!pool) return null;
    const at = `/1.0/storage-pools/${encodeURIComponent(pool)}`;
    try {
      const [res, info] = await Promise.all([
        this.client.get<{ space?: { total?: number; used?: number } }>(`${at}/resources`),
        this.client.get<{ config?: Record<string, string> }>(at),
      ]);
      if (!res.space?.total) return null;
      const free = Math.max(0, res.space.total - (res.space.used ?? 0));
      const source = info.config?.source;
      const file = source?.startsWith('/') ? await stat(source).catch(() => null) : null;
      if (!source || !file?.isFile()) return free;
      const fs = await statfs(dirname(source));
      return Math.min(free, fs.bavail * fs.bsize);
    } catch (err) {
      throw incusError(err, 'Measuring the storage pool');
    }
  }

  /**
   * Whether this server reaches the node's address itself: incusd is local, the session's bridge (its own or a
   * spare) is an interface in this network namespace, and on a cluster the node is on this member (every member
   * has the bridge, but only the holding member's carries the node).
   */
  async routed(sandboxId: string, location: string | undefined): Promise<boolean> {
    if (this.previewRelay === 'always' || this.client.remote) return false;
    if (!existsSync(`/sys/class/net/${await this.bridgeOf(sandboxId)}`)) return false;
    return !(await this.clustered()) || location === (await this.localMember());
  }

  /** Directly where the node's address is routed here (routed), else through socat in the node over an exec (relay.ts). */
  async openPort(sandboxId: string, node: string, port: number) {
    const name = instanceName(sandboxId, node);
    let ip: string;
    let direct: boolean;
    try {
      const info = await this.client.get<InstanceInfo>(`/1.0/instances/${name}`);
      ip = nodeIp(await this.subnetOf(sandboxId), node);
      direct = await this.routed(sandboxId, info.location);
    } catch (err) {
      throw incusError(err, 'Finding the node');
    }
    if (direct) return connectPort(ip, port);
    // The node's own address, as a direct connection would reach it: a port the learner published on the node's
    // loopback only stays out of previews either way.
    return relayPort(this.client, name, ip, port).catch((err) => {
      throw err instanceof PortError ? err : incusError(err, 'Reaching the node');
    });
  }

  async nodeAddress(sandboxId: string, node: string) {
    try {
      await this.client.get(`/1.0/instances/${instanceName(sandboxId, node)}`);
      return nodeIp(await this.subnetOf(sandboxId), node);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw incusError(err, 'Finding the node');
    }
  }
}

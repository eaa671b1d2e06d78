// What the session manager needs from wherever learner nodes run. The local Docker implementation
// is below; a provider on a multi-host orchestrator can implement the same interface later.
import type { Duplex } from 'node:stream';
import type { ExecResult, RunOptions } from './exec.ts';
import type { Limits } from './node-spec.ts';

export type Tty = { stream: Duplex; resize: (cols: number, rows: number) => Promise<void> };

/** A port a node's engine publishes (loopback-only bindings are left out: they cannot be previewed). */
export type PublishedPort = { port: number; container: string; image: string };

/** The limits that can change on a running node (cgroup writes); its disk size cannot. */
export type NodeLimits = Omit<Limits, 'diskBytes'>;

/** What one machine holding learner nodes has, for capacity estimates; diskFree: its nodes' storage, null if unknown. */
export type MachineResources = { name: string; cpus: number; memoryTotal: number; memoryAvailable: number; diskFree: number | null };

/** lost: the machine holding the sandbox's nodes, when it cannot be reached (an Incus cluster member offline or not answering). */
export type FoundSandbox = { sandboxId: string; nodes: string[]; running: boolean; lost?: string };

/** A sandbox whose machine went away: the member that held it and the nodes it had there. */
export type LostSandbox = { member: string; nodes: string[] };

/** A machine being drained for planned maintenance: no new sandbox is placed there. Times in epoch ms. */
export type Drain = { deadline: number; started: number };

/** A machine sandboxes may be placed on (an Incus cluster member), as the operator's list shows it. */
export type Machine = { name: string; status: string; drain: Drain | null };

export interface SandboxProvider {
  /**
   * Creates the sandbox's private network and its nodes, resolving when every engine answers. `forLearner`: a
   * learner is waiting for it, so what was set aside for a machine being away (Incus's spare bridges) may be
   * used; the warm pool and measurements leave that for them.
   */
  createSandbox(sandboxId: string, nodes: string[], limits: Limits, opts?: { forLearner?: boolean }): Promise<void>;
  addNode(sandboxId: string, node: string, limits: Limits): Promise<void>;
  removeNode(sandboxId: string, node: string): Promise<void>;
  /** Removes nodes, their storage and the network. Never throws for parts already gone. */
  removeSandbox(sandboxId: string): Promise<void>;
  /** Every sandbox this provider holds, for adoption after a restart. */
  list(): Promise<FoundSandbox[]>;
  run(sandboxId: string, node: string, cmd: string, opts: RunOptions): Promise<ExecResult>;
  openTty(sandboxId: string, node: string, cmd: string[], size: { cols: number; rows: number }): Promise<Tty>;
  /**
   * The node's init process as the server sees it (a pid in the server's own /proc) and what its cgroup path
   * must name (the container's id or instance), for terminals that attach to a shell's socket directly
   * (terminal/attach.ts). Optional: null or absent where the server cannot see the node's processes.
   */
  nodeInit?(sandboxId: string, node: string): Promise<{ pid: number; cgroup: string } | null>;
  /**
   * Sandboxes whose nodes are on a machine that went away (an Incus cluster member reported offline), by id.
   * May name other servers' sandboxes too: the caller keeps its own. Optional: a single machine loses none.
   */
  lostSandboxes?(): Promise<Map<string, LostSandbox>>;
  /** Makes what new sandboxes will need while a machine is away, when it can (Incus: spare bridges); how many. */
  reserveBridges?(): Promise<number>;
  /** The machine holding the sandbox when it does not answer (not yet declared lost), else null. Optional. */
  machineAway?(sandboxId: string): Promise<string | null>;
  /** Removes leftovers that belong to no sandbox (e.g. disks after a crash); returns how many. */
  sweep?(): Promise<number>;
  /** Published ports of a node's engine: host side of the node, as seen from the server. */
  nodeAddress(sandboxId: string, node: string): Promise<string | null>;
  /**
   * A byte stream to TCP `port` at the node's address, resolved once connected (previews: plain requests and
   * upgrades). Where the server has no route to the node (an Incus cluster member elsewhere) it is relayed
   * through the engine. Rejects with a socket-style error (code ECONNREFUSED when nothing listens, ETIMEDOUT)
   * when the port does not answer, and with an ApiError when the node or the engine cannot be reached.
   */
  openPort(sandboxId: string, node: string, port: number): Promise<Duplex>;
  /** Runs `cmd` as the learner and streams its stdout (binary-safe, no TTY), e.g. a tar of a folder. Optional:
   *  without it, archives cannot be downloaded and the site polls a node's ports (ports-watch.ts follows them with it). */
  streamOut?(sandboxId: string, node: string, cmd: string): Promise<NodeJS.ReadableStream & { destroy(): void }>;
  /** Changes a running node's memory, CPU and process limits in place (workshops tighten warm pool nodes).
   *  Optional: without it a workshop cannot have limits of its own. */
  updateLimits?(sandboxId: string, node: string, limits: NodeLimits): Promise<void>;
  /** Memory a node holds that the host cannot reclaim (usage minus inactive page cache), for capacity estimates. */
  nodeMemory?(sandboxId: string, node: string): Promise<number>;
  /**
   * The machines nodes run on, when that is not (only) this host: a remote server, or each online member of a
   * cluster. Null: nodes run here, and the host's own figures (MemAvailable, free disk) are the finer ones.
   */
  machines?(): Promise<MachineResources[] | null>;
  /**
   * The machines sandboxes may be placed on, with their drains (Incus: the cluster's members). Null, or absent,
   * where there is one machine (a single host, Docker): there is nothing to drain.
   */
  machineList?(): Promise<Machine[] | null>;
  /** The machine holding a sandbox (Incus: the `location` of its node1), or null where unknown. */
  machineOf?(sandboxId: string): Promise<string | null>;
  /**
   * Marks a machine as draining (no new sandbox is placed there; the mark survives a restart of Berth) or, with
   * null, no longer. An unknown machine is 404 MACHINE_NOT_FOUND.
   */
  setDrain?(machine: string, drain: Drain | null): Promise<void>;
  /** Host disk a node's own storage really occupies, or null where nodes have no disk of their own. */
  nodeDiskBytes?(sandboxId: string, node: string): Promise<number | null>;
  /** Free space where new nodes' storage goes (e.g. Incus's storage pool); without it, the state folder's file system. */
  freeDiskBytes?(): Promise<number | null>;
}

/**
 * A provider's options over its defaults, as destructuring defaults give them (an option passed as undefined takes
 * its default), for `Object.assign(this, …)` in a constructor: one line instead of one assignment per option.
 */
export function withDefaults<O extends object, D extends Partial<O>>(opts: O, defaults: D): O & D {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaults, ...given } as O & D;
}

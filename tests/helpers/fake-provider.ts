// An in-memory SandboxProvider for the unit layer: it remembers which sandboxes and nodes exist and answers
// commands from a script the test gives. It stands in for the engine only where the engine is not what is
// being tested (validation, auth, rate limits, workshop rules); a test that claims a sandbox works uses the
// real engine (tests/integration, tests/security).
import { type Duplex, duplexPair } from 'node:stream';
import { ApiError } from '../../sandbox-server/errors.ts';
import type { ExecResult, RunOptions } from '../../sandbox-server/engine/exec.ts';
import type { Limits } from '../../sandbox-server/engine/node-spec.ts';
import type { Drain, FoundSandbox, LostSandbox, Machine, SandboxProvider, Tty } from '../../sandbox-server/engine/provider.ts';

export type RunCall = { sandboxId: string; node: string; cmd: string; opts: RunOptions };

export class FakeProvider implements SandboxProvider {
  sandboxes = new Map<string, { nodes: string[]; limits: Limits }>();
  runs: RunCall[] = [];
  created = 0;
  removed = 0;
  /** Answers run(); the default is a command that succeeded with no output. */
  answer: (call: RunCall) => Partial<ExecResult> = () => ({});
  /** Awaited inside createSandbox/addNode: a test holds it to keep creations in flight (races, capacity). */
  gate: Promise<void> = Promise.resolve();
  /** Thrown by the next createSandbox, once. */
  failNext: Error | null = null;
  /** Sandboxes whose machine went away, with its name: lostSandboxes() names them, and anything done to them fails. */
  lostOn = new Map<string, string>();

  /**
   * The machines of a cluster, by name, with their drain marks (an Incus cluster's members with `user.berth.drain`);
   * null: one machine, as Docker or a single Incus (machineList() says null). With machines, each new sandbox is
   * placed on the online, not draining one holding fewest, as Berth's placement group does on Incus.
   */
  members: Map<string, { status: string; drain: Drain | null }> | null = null;
  /** Where each sandbox was placed (machineOf). */
  placed = new Map<string, string>();

  /** A cluster of these machines, all online. */
  cluster(...names: string[]) {
    this.members = new Map(names.map((n) => [n, { status: 'Online', drain: null }]));
    return this;
  }

  async machineList(): Promise<Machine[] | null> {
    return this.members && [...this.members].map(([name, m]) => ({ name, status: m.status, drain: m.drain && { ...m.drain } }));
  }

  async machineOf(sandboxId: string) {
    return this.placed.get(sandboxId) ?? null;
  }

  async setDrain(machine: string, drain: Drain | null) {
    const m = this.members?.get(machine);
    if (!m) throw new ApiError(404, 'MACHINE_NOT_FOUND', `No machine called ${machine}.`);
    m.drain = drain && { ...drain };
  }

  private place(sandboxId: string) {
    if (!this.members) return;
    const held = (name: string) => [...this.placed.values()].filter((p) => p === name).length;
    const open = [...this.members].filter(([, m]) => m.status === 'Online' && !m.drain).map(([n]) => n);
    if (!open.length) throw new ApiError(503, 'OUT_OF_CAPACITY', 'No machine may take a new sandbox.');
    this.placed.set(sandboxId, open.sort((a, b) => held(a) - held(b))[0]);
  }

  /** Sandboxes whose machine does not answer but is not declared lost yet: machineAway() names it. */
  silentOn = new Map<string, string>();

  away(sandboxId: string) {
    if (this.lostOn.has(sandboxId) || this.silentOn.has(sandboxId)) throw new Error(`the machine of ${sandboxId} does not answer`);
  }

  async machineAway(sandboxId: string) {
    return this.silentOn.get(sandboxId) ?? this.lostOn.get(sandboxId) ?? null;
  }

  async lostSandboxes(): Promise<Map<string, LostSandbox>> {
    return new Map([...this.lostOn].map(([id, member]) => [id, { member, nodes: this.sandboxes.get(id)?.nodes ?? [] }]));
  }

  async createSandbox(sandboxId: string, nodes: string[], limits: Limits) {
    // Always yield, so concurrent callers interleave as they would on a real engine.
    await new Promise((r) => setImmediate(r));
    await this.gate;
    const err = this.failNext;
    this.failNext = null;
    if (err) throw err;
    this.place(sandboxId);
    this.sandboxes.set(sandboxId, { nodes: [...nodes], limits });
    this.created++;
  }

  async addNode(sandboxId: string, node: string) {
    await this.gate;
    this.sandboxes.get(sandboxId)?.nodes.push(node);
  }

  async removeNode(sandboxId: string, node: string) {
    const s = this.sandboxes.get(sandboxId);
    if (s) s.nodes = s.nodes.filter((n) => n !== node);
  }

  async removeSandbox(sandboxId: string) {
    this.away(sandboxId);
    this.placed.delete(sandboxId);
    if (this.sandboxes.delete(sandboxId)) this.removed++;
  }

  async list(): Promise<FoundSandbox[]> {
    return [...this.sandboxes].map(([sandboxId, s]) => {
      const lost = this.lostOn.get(sandboxId);
      return { sandboxId, nodes: s.nodes, running: !lost, ...(lost ? { lost } : {}) };
    });
  }

  async run(sandboxId: string, node: string, cmd: string, opts: RunOptions): Promise<ExecResult> {
    const call = { sandboxId, node, cmd, opts };
    this.runs.push(call);
    this.away(sandboxId);
    return { exitCode: 0, stdout: '', stderr: '', durationMs: 1, truncated: false, ...this.answer(call) };
  }

  openTty(): Promise<Tty> {
    return Promise.reject(new Error('FakeProvider has no terminals: terminal tests use the real engine'));
  }

  async nodeAddress(sandboxId: string, node: string) {
    return this.sandboxes.get(sandboxId)?.nodes.includes(node) ? '192.0.2.10' : null;
  }

  /** In-process apps behind a node's ports (any node): each connection openPort makes is handed to one. */
  apps = new Map<number, (conn: Duplex) => void>();
  /** Connections openPort made, for tests that check they end. */
  opened: Duplex[] = [];

  async openPort(sandboxId: string, _node: string, port: number): Promise<Duplex> {
    this.away(sandboxId);
    const app = this.apps.get(port);
    if (!app) throw Object.assign(new Error(`connect ECONNREFUSED 192.0.2.10:${port}`), { code: 'ECONNREFUSED' });
    const [ours, theirs] = duplexPair();
    this.opened.push(ours);
    app(theirs);
    return ours;
  }
}

/** A held gate: `release()` lets every creation waiting on it finish. */
export function heldGate() {
  let release!: () => void;
  const promise = new Promise<void>((r) => {
    release = r;
  });
  return { promise, release };
}

// The sandbox bridges (bs-*) on this machine and their gateway addresses, followed by polling the kernel.
//
// Why polling the kernel rather than Incus's events: the DNS socket binds to an address the kernel holds, so the
// kernel is the one source that cannot disagree with it. It covers bridges made while the agent was down or
// incusd restarting (a missed event is never replayed), needs no connection that can drop and must be
// re-subscribed, and works the same for any bridge named bs-* (tests make them with `ip`). A tick costs one
// readdir of /sys/class/net; `ip -j -4 addr` runs only when the set of bridges changed or one still lacks its
// address; a gateway that could not be bound (its port taken) is tried again every 30 s, not every tick. (Node's os.networkInterfaces() cannot serve: libuv leaves out interfaces that are not RUNNING, and a
// bridge with no node started on it yet has no carrier.)
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { BRIDGE_PREFIX } from '../engine/firewall.ts';

const run = promisify(execFile);

/** bs-* interfaces by name, each with its ifindex (a bridge deleted and made again under one name gets a new one). */
export function listBridges(sysNet = '/sys/class/net'): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(sysNet)) {
    if (!name.startsWith(BRIDGE_PREFIX)) continue;
    try {
      out.set(name, readFileSync(`${sysNet}/${name}/ifindex`, 'utf8').trim());
    } catch {
      /* gone between the readdir and the read */
    }
  }
  return out;
}

type IpAddr = { ifname?: string; addr_info?: { family?: string; local?: string }[] };

/** The first IPv4 address of each interface, from `ip -j -4 addr show`'s output. */
export function parseIpAddr(json: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const link of JSON.parse(json) as IpAddr[]) {
    const local = link.addr_info?.find((a) => a.family === 'inet' && a.local)?.local;
    if (link.ifname && local) out.set(link.ifname, local);
  }
  return out;
}

async function ipv4Addresses(): Promise<Map<string, string>> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 });
  return parseIpAddr(stdout || '[]');
}

export type BridgeWatchOptions = {
  /** A bridge's gateway appeared: resolves false when it could not be served yet (tried again next tick). */
  onUp: (bridge: string, gateway: string) => Promise<boolean>;
  onDown: (bridge: string, gateway: string) => void;
  onError?: (err: unknown) => void;
  intervalMs?: number;
  /** How long a gateway that could not be served waits before it is tried again (each try logs a warning). */
  retryMs?: number;
  now?: () => number;
  list?: () => Map<string, string>;
  addresses?: () => Promise<Map<string, string>>;
};

export class BridgeWatch {
  /** Bridges being served: name → gateway, and the ifindex it had. */
  private served = new Map<string, { gateway: string; ifindex: string }>();
  private seen = '';
  /** When to look at the addresses again although the set of bridges is the same (Infinity: no need). */
  private recheckAt = Number.POSITIVE_INFINITY;
  /** Bridges whose gateway could not be served, by name:ifindex:gateway: when that was. */
  private refused = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  private opts: BridgeWatchOptions;

  constructor(opts: BridgeWatchOptions) {
    this.opts = opts;
  }

  /** Looks once now (resolves when that look is done), then every intervalMs. */
  async start() {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs ?? 1000);
  }

  /** Stops looking; every gateway served is let go. */
  async stop() {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.busy;
    for (const [name, s] of this.served) this.opts.onDown(name, s.gateway);
    this.served.clear();
  }

  get bridges(): Map<string, string> {
    return new Map([...this.served].map(([name, s]) => [name, s.gateway]));
  }

  /** One look; ticks never overlap (a slow `ip` makes the next tick wait, not run beside it). */
  tick(): Promise<void> {
    this.busy = this.busy.then(() => this.look()).catch((err) => this.opts.onError?.(err));
    return this.busy;
  }

  private async look() {
    const now = (this.opts.list ?? listBridges)();
    const key = [...now].map(([n, i]) => `${n}:${i}`).join(',');
    const clock = (this.opts.now ?? Date.now)();
    const retryMs = this.opts.retryMs ?? 30_000;
    if (key === this.seen && clock < this.recheckAt) return;
    const addresses = now.size ? await (this.opts.addresses ?? ipv4Addresses)() : new Map<string, string>();
    let recheckAt = Number.POSITIVE_INFINITY;
    for (const [name, s] of this.served) {
      if (now.get(name) === s.ifindex && addresses.get(name) === s.gateway) continue;
      this.served.delete(name);
      this.opts.onDown(name, s.gateway);
    }
    for (const [name, ifindex] of now) {
      if (this.served.has(name)) continue;
      const gateway = addresses.get(name);
      // A bridge is made before its address is set: looked at again next tick until it has one.
      if (!gateway) {
        recheckAt = 0;
        continue;
      }
      const id = `${name}:${ifindex}:${gateway}`;
      const refusedAt = this.refused.get(id);
      if (refusedAt !== undefined && clock < refusedAt + retryMs) {
        recheckAt = Math.min(recheckAt, refusedAt + retryMs);
        continue;
      }
      if (!(await this.opts.onUp(name, gateway))) {
        this.refused.set(id, clock);
        recheckAt = Math.min(recheckAt, clock + retryMs);
        continue;
      }
      this.refused.delete(id);
      this.served.set(name, { gateway, ifindex });
    }
    // Refusals of bridges that are gone are forgotten.
    for (const id of this.refused.keys()) if (now.get(id.split(':')[0]) !== id.split(':')[1]) this.refused.delete(id);
    this.seen = key;
    this.recheckAt = recheckAt;
  }
}

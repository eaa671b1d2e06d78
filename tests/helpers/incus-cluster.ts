// A real two-member Incus cluster on this one machine (machine-facts.md, issue 18): each member an incusd with
// its own INCUS_DIR, started in its own network namespace, the two namespaces joined by a veth pair with
// addresses picked here. Every `incus` command runs inside its member's namespace, so a member's address is
// only ever dialled from a namespace that holds it: nothing leaves this machine. The test process itself
// talks to the members through their unix sockets (a socket file is reachable from any network namespace).
// stop() takes down everything start() made, also after a start that failed half way.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonEnv } from '../../runtime/bootstrap/daemon-env.ts';
import { stateDir } from '../../runtime/bootstrap/engine.ts';
import { INCUSD, pingIncus } from '../../runtime/incus/daemons.ts';

/**
 * The learner image the bring-up built (<state>/incus/berth-learner-*.tar) when this machine can form a cluster
 * (root, incusd's binaries); undefined otherwise, and a cluster test is then skipped, not passed.
 */
export function clusterImage(): string | undefined {
  const dir = join(stateDir(process.env), 'incus');
  const tar = existsSync(dir) ? readdirSync(dir).find((f) => /^berth-learner-.*\.tar$/.test(f)) : undefined;
  return process.getuid?.() === 0 && existsSync(INCUSD) && tar ? join(dir, tar) : undefined;
}

export type Member = { name: string; ns: string; dir: string; address: string; socket: string };
/** A veth from this host's own namespace into a member's: `host` is this side's address, `member` the other's. */
export type HostLink = { host: string; member: string };

/** The cgroup hierarchies of this host, to mount again in the private mount namespace `ip netns exec` makes. */
function cgroupMounts(): string {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const out: string[] = [];
  for (const l of lines) {
    const [pre, post] = l.split(' - ');
    if (!post) continue;
    const point = pre.split(' ')[4];
    const [fstype, , superOpts] = post.split(' ');
    if (!point.startsWith('/sys/fs/cgroup/')) continue;
    const opts = superOpts
      .split(',')
      .filter((o) => o !== 'rw' && o !== 'ro')
      .join(',');
    if (fstype === 'cgroup') out.push(`mkdir -p ${point} && mount -t cgroup -o ${opts || 'none'} cgroup ${point}`);
    if (fstype === 'cgroup2') out.push(`mkdir -p ${point} && mount -t cgroup2 cgroup2 ${point}`);
  }
  return ['mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup', ...out].join(' && ');
}

function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  // daemonEnv: without npm's node_modules/.bin on PATH, where Astro's `nft` made incusd panic (daemon-env.ts).
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, env: daemonEnv(opts.env ?? process.env), timeout: opts.timeoutMs ?? 120_000 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error ?? '')).trim().slice(-600)}`);
  return r.stdout;
}

export class IncusCluster {
  id = randomBytes(3).toString('hex');
  root: string;
  members: Member[];
  log: (m: string) => void;
  links = new Map<string, HostLink>();

  constructor(root: string, log: (m: string) => void = () => {}) {
    this.root = root;
    this.log = log;
    // A /30 of 10.250.0.0/16 inside the two namespaces only; the host's own routes never see it.
    const net = `10.250.${randomBytes(1)[0]}`;
    this.members = [1, 2].map((i) => {
      const dir = join(root, `m${i}`);
      return { name: `m${i}`, ns: `berth-${this.id}-m${i}`, dir, address: `${net}.${i}`, socket: join(dir, 'unix.socket') };
    });
  }

  /** `incus …` as the member's own client, inside its network namespace. */
  incus(m: Member, args: string[], input?: string) {
    return sh('ip', ['netns', 'exec', m.ns, 'incus', ...args], { input, env: { ...process.env, INCUS_DIR: m.dir } });
  }

  /** Forms the cluster; `image`: the learner image tarball to import, or null for a cluster without it. */
  async start(image: string | null, poolSize = '10GiB') {
    const [a, b] = this.members;
    // mkdtemp's 0700 would keep the containers' mapped root out of their own rootfs ("Could not access").
    chmodSync(this.root, 0o711);
    for (const m of this.members) {
      mkdirSync(m.dir, { recursive: true });
      sh('ip', ['netns', 'add', m.ns]);
      sh('ip', ['-n', m.ns, 'link', 'set', 'lo', 'up']);
    }
    const va = `bc${this.id}a`;
    const vb = `bc${this.id}b`;
    sh('ip', ['link', 'add', va, 'netns', a.ns, 'type', 'veth', 'peer', 'name', vb, 'netns', b.ns]);
    for (const [m, v] of [
      [a, va],
      [b, vb],
    ] as const) {
      sh('ip', ['-n', m.ns, 'addr', 'add', `${m.address}/30`, 'dev', v]);
      sh('ip', ['-n', m.ns, 'link', 'set', v, 'up']);
    }
    const t0 = performance.now();
    await Promise.all(this.members.map((m) => this.startDaemon(m)));
    this.log(`FIGURE two incusd ready in their namespaces: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const t1 = performance.now();
    const pool = (size: string) => `storage_pools:\n- name: berth\n  driver: btrfs\n  config:\n    size: ${size}\n`;
    const root = '  devices:\n    root:\n      path: /\n      pool: berth\n      type: disk\n';
    this.incus(
      a,
      ['admin', 'init', '--preseed'],
      `config:\n  core.https_address: ${a.address}:8443\n${pool(poolSize)}profiles:\n- name: default\n${root}- name: berth\n${root}cluster:\n  server_name: ${a.name}\n  enabled: true\n`,
    );
    const token = this.incus(a, ['cluster', 'add', b.name, '--quiet']).trim();
    this.incus(
      b,
      ['admin', 'init', '--preseed'],
      `cluster:\n  enabled: true\n  server_name: ${b.name}\n  server_address: ${b.address}:8443\n  cluster_token: ${token}\n  member_config:\n  - entity: storage-pool\n    name: berth\n    key: size\n    value: ${poolSize}\n`,
    );
    this.log(`FIGURE cluster bootstrap + join: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    if (!image) return;
    const t2 = performance.now();
    this.incus(a, ['image', 'import', image, '--alias', 'berth-learner']);
    this.log(`FIGURE learner image imported into the cluster: ${((performance.now() - t2) / 1000).toFixed(1)} s`);
  }

  async startDaemon(m: Member) {
    const out = openSync(join(m.dir, 'incusd.out'), 'a');
    // The namespace's fresh /sys has no cgroups: mounted again (private to this mount namespace) before incusd.
    const child = spawn('ip', ['netns', 'exec', m.ns, 'sh', '-c', `${cgroupMounts()} && exec ${INCUSD} --group root --logfile ${join(m.dir, 'incusd.log')}`], {
      detached: true,
      stdio: ['ignore', out, out],
      env: daemonEnv({ ...process.env, INCUS_DIR: m.dir }),
    });
    child.unref();
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    for (const end = Date.now() + 60_000; ; ) {
      if ((await pingIncus(m.socket, 1000)) === 200) break;
      if (exited || Date.now() > end) throw new Error(`incusd ${m.name} did not answer: ${readFileSync(join(m.dir, 'incusd.out'), 'utf8').slice(-600)}`);
      await sleep(100);
    }
    this.incus(m, ['admin', 'waitready', '--timeout=60']);
  }

  /**
   * A veth pair from this host's namespace into `m`'s: the "cluster network" on which an operator's Berth host
   * offers its registry mirror to the members (a /30 of 10.251.0.0/16; only the two ends know it). Deleted
   * with the member's namespace.
   */
  linkHost(m: Member): HostLink {
    const known = this.links.get(m.name);
    if (known) return known;
    const i = this.members.indexOf(m);
    const net = `10.251.${Number.parseInt(this.id.slice(0, 2), 16)}`;
    const link = { host: `${net}.${4 * i + 1}`, member: `${net}.${4 * i + 2}` };
    const [here, there] = [`bh${this.id}${i}`, `bm${this.id}${i}`];
    sh('ip', ['link', 'add', here, 'type', 'veth', 'peer', 'name', there, 'netns', m.ns]);
    sh('ip', ['addr', 'add', `${link.host}/30`, 'dev', here]);
    sh('ip', ['link', 'set', here, 'up']);
    sh('ip', ['-n', m.ns, 'addr', 'add', `${link.member}/30`, 'dev', there]);
    sh('ip', ['-n', m.ns, 'link', 'set', there, 'up']);
    this.links.set(m.name, link);
    return link;
  }

  /** SIGKILLs every process in the member's namespace until none is left (5 s at most); what is left, or null. */
  private async killAll(m: Member): Promise<string | null> {
    for (let i = 0; i < 50 && this.nsPids(m).length; i++) {
      for (const pid of this.nsPids(m)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(100);
    }
    return this.nsPids(m).length ? `${m.name}: processes left in ${m.ns}: ${this.nsPids(m).join(' ')}` : null;
  }

  /**
   * The member's machine going away: every process in its network namespace (incusd, its dnsmasq and
   * forkproxy) killed at once, without a word to the cluster. Its containers' own processes, in their own
   * namespaces, run on unseen, as they would on a machine cut off; stop() removes them by their cgroups.
   */
  async kill(m: Member) {
    const left = await this.killAll(m);
    if (left) throw new Error(left);
  }

  /** Pids whose network namespace is the member's (incusd, its lxc monitors, dnsmasq, forkproxy…). */
  nsPids(m: Member): number[] {
    const r = spawnSync('ip', ['netns', 'pids', m.ns], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n').filter(Boolean).map(Number) : [];
  }

  /**
   * Everything start() made, in reverse: every instance of the cluster stopped and deleted, the daemons ended
   * (and any process left in their namespaces killed), the containers' cgroups removed, the pools' loop
   * devices detached, the namespaces (and so the veth pair) and the directories deleted. Each step goes on
   * when one before it failed; the problems are returned.
   */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    const step = async (what: string, f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    // Instance names from the members' own folders too: a daemon that died cannot list them.
    const names = new Set(this.members.flatMap((m) => (existsSync(join(m.dir, 'containers')) ? readdirSync(join(m.dir, 'containers')) : [])));
    const up: Member[] = [];
    for (const m of this.members) if ((await pingIncus(m.socket, 2000)) === 200) up.push(m);
    if (up.length) {
      await step('listing instances', () => {
        for (const n of this.incus(up[0], ['list', '--format', 'csv', '-c', 'n']).split('\n').filter(Boolean)) names.add(n);
      });
      for (const n of names) {
        await step(`deleting ${n}`, () => {
          try {
            this.incus(up[0], ['delete', '--force', n]);
          } catch (err) {
            if (!/not found/i.test((err as Error).message)) throw err;
          }
        });
      }
    }
    for (const m of this.members) {
      if (up.includes(m))
        await step(`shutting down ${m.name}`, () =>
          sh('ip', ['netns', 'exec', m.ns, 'incus', 'admin', 'shutdown', '--timeout', '30'], { env: { ...process.env, INCUS_DIR: m.dir }, timeoutMs: 45_000 }),
        );
    }
    for (const m of this.members) {
      const left = await this.killAll(m);
      if (left) problems.push(left);
    }
    // A container that outlived its daemon: its processes by its cgroup (names are this run's own).
    for (const n of names) {
      for (const ctl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
        for (const kind of ['lxc.payload', 'lxc.monitor']) {
          const dir = join('/sys/fs/cgroup', ctl, `${kind}.${n}`);
          if (!existsSync(dir)) continue;
          await step(`cgroup ${dir}`, () => {
            for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
              try {
                process.kill(Number(pid), 'SIGKILL');
              } catch {
                /* gone */
              }
            }
            spawnSync('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
          });
        }
      }
    }
    for (const m of this.members) {
      const img = join(m.dir, 'disks', 'berth.img');
      if (existsSync(img)) {
        for (const dev of sh('losetup', ['-j', img])
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(':')[0]))
          await step(`detaching ${dev}`, () => sh('losetup', ['-d', dev]));
      }
      await step(`deleting ${m.ns}`, () => {
        if (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(m.ns)) sh('ip', ['netns', 'del', m.ns]);
      });
    }
    await step(`removing ${this.root}`, () => rmSync(this.root, { recursive: true, force: true }));
    return problems;
  }
}

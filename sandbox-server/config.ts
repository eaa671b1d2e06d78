// Configuration, parsed once from the environment: the server's variables and the workshop feature's. Every
// problem is reported with the variable's name. Nothing else in the server reads the environment.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { stateDir } from '../runtime/bootstrap/engine.ts';
import { ConfigError } from './errors.ts';

export { ConfigError };

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);
/** A comma-separated setting's items, trimmed, empty ones left out. */
const list = (value: string) =>
  value
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
/** A comma-separated list of SHA-256 hex digests (token hashes), empty by default. */
const sha256List = (message: string) =>
  z
    .string()
    .default('')
    .refine((s) => list(s).every((h) => /^[0-9a-f]{64}$/i.test(h)), message);
const bytes = z.string().regex(/^\d+(\.\d+)?\s*[kKmMgG]?i?[bB]?$/, 'a size such as 512m or 2g');

export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)/.exec(s.trim());
  if (!m) throw new Error(`not a size: ${s}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

const schema = z.object({
  PORT: int(3000, 0, 65535).describe('HTTP port for the API and the site'),
  HOST: z.string().default('0.0.0.0').describe('address to listen on'),
  BERTH_PUBLIC_ORIGIN: z
    .string()
    .url()
    .optional()
    .describe('origin learners load the site from (checked on WebSocket upgrades); default http://localhost:PORT'),
  BERTH_EXTRA_ORIGINS: z.string().default('').describe('comma-separated further allowed origins'),
  BERTH_ENGINE_IMAGE: z.string().default('berth/engine:latest').describe('learner engine image'),
  BERTH_PROVIDER: z
    .enum(['auto', 'docker', 'incus'])
    .default('auto')
    .describe(
      'where learner nodes run: incus (system containers with a rootful Docker), docker (rootless engines in host engine containers), or auto: incus when incusd answers with the learner image, else docker',
    ),
  BERTH_INCUS_SOCKET: z.string().default('/var/lib/incus/unix.socket').describe('incusd REST API socket (provider incus)'),
  BERTH_INCUS_URL: z
    .string()
    .regex(/^https:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}\/?$/, 'an address such as https://incus.example.org:8443')
    .optional()
    .describe(
      'a remote Incus cluster to use instead of the socket (with the three settings below); each member runs the member agent, see the README, "Adding a machine"',
    ),
  BERTH_INCUS_CLIENT_CERT: z
    .string()
    .optional()
    .describe('PEM file of the client certificate Berth presents to BERTH_INCUS_URL (trusted there with `incus config trust add-certificate`)'),
  BERTH_INCUS_CLIENT_KEY: z.string().optional().describe("PEM file of that certificate's private key"),
  BERTH_INCUS_SERVER_CERT: z
    .string()
    .optional()
    .describe("PEM file of the server's (or cluster's) certificate: the only one accepted from BERTH_INCUS_URL, as the incus CLI pins it"),
  BERTH_INCUS_IMAGE: z.string().default('berth-learner').describe('Incus image alias of the learner node (provider incus)'),
  BERTH_INCUS_SPARE_BRIDGES: int(0, 0, 64).describe(
    'session bridges kept made ahead on a cluster while every member is online, so that learners still get sandboxes while one is away (Incus makes a new bridge only with every member there)',
  ),
  BERTH_INCUS_PREVIEW_RELAY: z
    .enum(['auto', 'always'])
    .default('auto')
    .describe(
      "how previews reach an Incus node's port: auto connects to its address where the session's bridge is routed from this server and relays through an Incus exec (socat in the node) elsewhere, e.g. a node on another cluster member; always relays every preview",
    ),
  BERTH_MIRROR_PORT: int(5000, 1, 65535).describe(
    'loopback port the registry mirror is published on (runtime/up.ts publishes it; pushes from the host and Incus nodes use it)',
  ),
  BERTH_POOL_SIZE: int(2, 0, 500).describe('ready engines kept warm'),
  BERTH_MAX_SANDBOXES: int(100, 1, 10000).describe('global cap on sandboxes (sessions plus pool)'),
  BERTH_MAX_NODES: int(5, 1, 10).describe('nodes per session'),
  BERTH_SANDBOX_MEMORY: bytes.default('2g').describe('memory limit per learner node'),
  BERTH_SANDBOX_CPUS: z.coerce
    .number()
    .positive()
    .max(1024)
    .optional()
    .describe(
      "CPUs per learner node, a hard cap; default all the host's cores: a node may use cores nobody else wants, and busy nodes share them equally (the kernel's CPU weights)",
    ),
  BERTH_SANDBOX_PIDS: int(2048, 64, 1_000_000).describe('process limit per learner node'),
  BERTH_SANDBOX_DISK: bytes.default('8g').describe('disk limit per learner node (engine storage)'),
  BERTH_SANDBOX_DISK_RESERVE: bytes
    .default('1g')
    .describe('host disk counted as taken by each node (its disk is sparse); a node is refused when the host cannot give this plus 2 GiB'),
  BERTH_SESSION_LIFETIME_MIN: int(240, 1, 7 * 24 * 60).describe('hard lifetime of a session in minutes'),
  BERTH_SESSION_MAX_LIFETIME_MIN: int(720, 1, 30 * 24 * 60).describe("absolute cap on a session's life in minutes, extends included"),
  BERTH_NODE_OPS_PER_MIN: int(12, 1, 10_000).describe('nodes added or removed per session per minute'),
  BERTH_TERMINALS_PER_SESSION: int(16, 1, 1000).describe('terminal WebSockets open at once per session'),
  BERTH_TERMINAL_ATTACH: z
    .enum(['direct', 'exec'])
    .default('direct')
    .describe(
      "how a terminal reaches its shell: direct (the server speaks dtach's protocol on the shell's socket in the node, through a small helper; exec where that cannot work) or exec (a `dtach -a` client in the node through the engine's exec stream)",
    ),
  BERTH_METRICS_TOKEN_SHA256: sha256List('comma-separated SHA-256 hex digests').describe(
    'tokens that may read /metrics (Authorization: Bearer), as SHA-256 hex digests; instructor tokens may too',
  ),
  BERTH_SESSION_EXTEND_MIN: int(60, 1, 24 * 60).describe('minutes added by one extend'),
  BERTH_IDLE_TIMEOUT_MIN: z.coerce
    .number()
    .positive()
    .max(24 * 60)
    .default(30)
    .describe('minutes without terminal input before a session is removed'),
  BERTH_REAP_INTERVAL_S: z.coerce.number().positive().max(3600).default(15).describe('how often expired sessions are looked for'),
  BERTH_CREATE_RATE_PER_MIN: int(10, 1, 100000).describe('session creations per client address per minute'),
  BERTH_EXEC_MAX_OUTPUT: bytes.default('1m').describe('bytes kept of stdout and of stderr per exec'),
  BERTH_FILE_MAX: bytes.default('1m').describe('largest file the editor API reads or writes'),
  BERTH_PREVIEW_DOMAIN: z
    .string()
    .regex(/^(none|[a-z0-9.-]+)$/, 'a domain such as preview.example.org, or none')
    .optional()
    .describe(
      'parent domain for per-port preview hosts (<session>-<node>-<port>.<domain>, needs wildcard DNS); default localhost when the public origin is localhost, else none (path scheme /p/... only)',
    ),
  BERTH_STATE_DIR: z.string().optional().describe('state folder (default .berth in the project)'),
  BERTH_SITE_DIR: z.string().optional().describe('built site to serve at / (default site/dist)'),
  BERTH_LESSONS_DIR: z.string().optional().describe('lessons folder (default lessons)'),
  BERTH_TRUST_PROXY: z.enum(['0', '1']).default('0').describe('1: take the client address from X-Forwarded-For'),
  BERTH_EGRESS_POLICY: z
    .enum(['allowlist', 'open', 'closed'])
    .default('allowlist')
    .describe('what sandboxes may reach outside this host: allowlist (package mirrors and BERTH_EGRESS_ALLOW), open, or closed'),
  BERTH_EGRESS_ALLOW: z.string().optional().describe('comma-separated host names sandboxes may reach on ports 80/443 (default: the apt mirrors of this host)'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level of the server (JSON lines on stdout)'),
});

export type Config = ReturnType<typeof loadConfig>;

const invalid = (env: NodeJS.ProcessEnv, issues: { name: string; message: string }[]) =>
  new ConfigError(`Invalid configuration:\n${issues.map((i) => `  ${i.name}: ${i.message} (${env[i.name] ?? 'unset'})`).join('\n')}`);

/** The environment parsed by one schema, or a ConfigError that names each bad variable and its value. */
function parse<T>(s: z.ZodType<T>, env: NodeJS.ProcessEnv): T {
  const r = s.safeParse(env);
  if (r.success) return r.data;
  throw invalid(
    env,
    r.error.issues.map((i) => ({ name: String(i.path[0]), message: i.message })),
  );
}

const REMOTE_FILES = {
  BERTH_INCUS_CLIENT_CERT: { what: 'a PEM certificate', check: (pem: string) => new X509Certificate(pem) },
  BERTH_INCUS_CLIENT_KEY: { what: 'a PEM private key', check: (pem: string) => createPrivateKey(pem) },
  BERTH_INCUS_SERVER_CERT: { what: 'a PEM certificate', check: (pem: string) => new X509Certificate(pem) },
} as const;

/** A remote Incus (BERTH_INCUS_URL and its three PEM files, read and checked here), or null for the local socket. */
function incusRemote(env: NodeJS.ProcessEnv, url: string | undefined) {
  const names = Object.keys(REMOTE_FILES) as (keyof typeof REMOTE_FILES)[];
  if (!url) {
    const stray = names.filter((n) => env[n]);
    if (stray.length)
      throw invalid(
        env,
        stray.map((name) => ({ name, message: 'only used with BERTH_INCUS_URL, which is unset' })),
      );
    return null;
  }
  const pem: Partial<Record<keyof typeof REMOTE_FILES, string>> = {};
  const issues: { name: string; message: string }[] = [];
  for (const name of names) {
    const file = env[name];
    if (!file) {
      issues.push({ name, message: `needed with BERTH_INCUS_URL: ${REMOTE_FILES[name].what} file` });
      continue;
    }
    try {
      pem[name] = readFileSync(file, 'utf8');
    } catch (err) {
      issues.push({ name, message: `cannot read it: ${(err as Error).message}` });
      continue;
    }
    try {
      REMOTE_FILES[name].check(pem[name]);
    } catch {
      issues.push({ name, message: `not ${REMOTE_FILES[name].what}` });
    }
  }
  if (issues.length) throw invalid(env, issues);
  return { url, clientCert: pem.BERTH_INCUS_CLIENT_CERT!, clientKey: pem.BERTH_INCUS_CLIENT_KEY!, serverCert: pem.BERTH_INCUS_SERVER_CERT! };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = parse(schema, env);
  const origin = c.BERTH_PUBLIC_ORIGIN ?? `http://localhost:${c.PORT}`;
  return {
    port: c.PORT,
    host: c.HOST,
    allowedOrigins: new Set([origin, `http://127.0.0.1:${c.PORT}`, `http://localhost:${c.PORT}`, ...list(c.BERTH_EXTRA_ORIGINS)]),
    engineImage: c.BERTH_ENGINE_IMAGE,
    provider: c.BERTH_PROVIDER,
    incus: {
      socket: c.BERTH_INCUS_SOCKET,
      image: c.BERTH_INCUS_IMAGE,
      remote: incusRemote(env, c.BERTH_INCUS_URL),
      spareBridges: c.BERTH_INCUS_SPARE_BRIDGES,
      previewRelay: c.BERTH_INCUS_PREVIEW_RELAY,
    },
    mirrorPort: c.BERTH_MIRROR_PORT,
    /** As configured, for join links; absent: links use the request's own origin. */
    publicOrigin: c.BERTH_PUBLIC_ORIGIN,
    poolSize: c.BERTH_POOL_SIZE,
    maxSandboxes: c.BERTH_MAX_SANDBOXES,
    maxNodes: c.BERTH_MAX_NODES,
    limits: {
      memoryBytes: parseBytes(c.BERTH_SANDBOX_MEMORY),
      // No cap below the machine by default: a cap of one core made a learner's cold `docker pull nginx` 1.31× the
      // host engine's on two cores (the unpack wants more than one), while fairness under load comes from the
      // equal CPU weights every node has anyway.
      nanoCpus: Math.round((c.BERTH_SANDBOX_CPUS ?? availableParallelism()) * 1e9),
      pids: c.BERTH_SANDBOX_PIDS,
      diskBytes: parseBytes(c.BERTH_SANDBOX_DISK),
    },
    lifetimeMs: c.BERTH_SESSION_LIFETIME_MIN * 60_000,
    extendMs: c.BERTH_SESSION_EXTEND_MIN * 60_000,
    maxLifetimeMs: c.BERTH_SESSION_MAX_LIFETIME_MIN * 60_000,
    nodeOpsPerMin: c.BERTH_NODE_OPS_PER_MIN,
    terminalsPerSession: c.BERTH_TERMINALS_PER_SESSION,
    terminalAttach: c.BERTH_TERMINAL_ATTACH,
    metricsHashes: list(c.BERTH_METRICS_TOKEN_SHA256).map((x) => x.toLowerCase()),
    idleMs: c.BERTH_IDLE_TIMEOUT_MIN * 60_000,
    reapIntervalMs: c.BERTH_REAP_INTERVAL_S * 1000,
    createRatePerMin: c.BERTH_CREATE_RATE_PER_MIN,
    execMaxOutput: parseBytes(c.BERTH_EXEC_MAX_OUTPUT),
    fileMax: parseBytes(c.BERTH_FILE_MAX),
    previewDomain: c.BERTH_PREVIEW_DOMAIN === 'none' ? null : (c.BERTH_PREVIEW_DOMAIN ?? (new URL(origin).hostname === 'localhost' ? 'localhost' : null)),
    secureCookies: new URL(origin).protocol === 'https:',
    stateDir: stateDir(env),
    siteDir: c.BERTH_SITE_DIR,
    lessonsDir: c.BERTH_LESSONS_DIR,
    diskReserveBytes: parseBytes(c.BERTH_SANDBOX_DISK_RESERVE),
    trustProxy: c.BERTH_TRUST_PROXY === '1',
    logLevel: c.LOG_LEVEL,
    egressPolicy: c.BERTH_EGRESS_POLICY,
    egressAllow: c.BERTH_EGRESS_ALLOW === undefined ? undefined : list(c.BERTH_EGRESS_ALLOW),
    workshops: loadWorkshopConfig(env),
  };
}

// ---- workshops ----

const workshopSchema = z.object({
  BERTH_ADMIN_TOKEN_SHA256: sha256List('comma-separated SHA-256 hex digests of instructor tokens').describe(
    'instructor (admin) tokens, as SHA-256 hex digests; besides these, <state>/admin-tokens is read',
  ),
  BERTH_WORKSHOP_PREWARM_MIN: z.coerce
    .number()
    .min(0)
    .max(24 * 60)
    .default(15)
    .describe('minutes before a workshop starts when the warm pool begins to grow toward its expected head count'),
  BERTH_JOINS_PER_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(60)
    .describe(
      "joins per client address per minute (each may take a sandbox; a class behind one NAT shares an address, and a workshop's capacity bounds the rest)",
    ),
  BERTH_JOIN_FAILURES_PER_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(100)
    .describe(
      'wrong join codes per client address per minute before joins from it are refused (a class behind one NAT shares an address; 31^6 codes stay out of reach)',
    ),
});

export type WorkshopConfig = { adminHashes: string[]; prewarmLeadMs: number; joinFailuresPerMin: number; joinsPerMin: number };

export function loadWorkshopConfig(env: NodeJS.ProcessEnv): WorkshopConfig {
  const w = parse(workshopSchema, env);
  return {
    adminHashes: list(w.BERTH_ADMIN_TOKEN_SHA256).map((x) => x.toLowerCase()),
    prewarmLeadMs: w.BERTH_WORKSHOP_PREWARM_MIN * 60_000,
    joinFailuresPerMin: w.BERTH_JOIN_FAILURES_PER_MIN,
    joinsPerMin: w.BERTH_JOINS_PER_MIN,
  };
}

// ---- the member agent (sandbox-server/member/) ----

/** host:port with a host name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** A host:port setting; a wrong form is reported once (the port's range only where the form is right). */
const hostPort = (example: string) =>
  z
    .string()
    .regex(HOST_PORT, `host:port, e.g. ${example}`)
    .refine((s) => {
      const m = HOST_PORT.exec(s);
      return !m || (Number(m[2]) >= 1 && Number(m[2]) <= 65535);
    }, 'a port from 1 to 65535')
    .optional();

const memberSchema = z.object({
  BERTH_MIRROR_RELAY: hostPort('berth.example.org:5000').describe(
    "member agent: the Berth host's read-only registry mirror as this member reaches it (host:port); the agent relays 127.0.0.1:BERTH_MIRROR_PORT there for the nodes' `mirror` device. Unset on the Berth host itself, which has the mirror",
  ),
  BERTH_MIRROR_OFFER: hostPort('10.0.0.1:5000').describe(
    "member agent on the Berth host: an address of the cluster's private network (host:port) where it offers this host's read-only mirror (published on loopback only) to the other members, their BERTH_MIRROR_RELAY",
  ),
});

/** What the member agent reads: the server's settings it shares (same names, same parsing) and its own. */
const memberShared = schema.pick({
  BERTH_EGRESS_POLICY: true,
  BERTH_EGRESS_ALLOW: true,
  BERTH_MIRROR_PORT: true,
  BERTH_INCUS_SOCKET: true,
  LOG_LEVEL: true,
});

export type MemberConfig = ReturnType<typeof loadMemberConfig>;

/** The member agent's configuration; a ConfigError naming each bad variable, as loadConfig. */
export function loadMemberConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = parse(memberShared, env);
  const m = parse(memberSchema, env);
  // BERTH_MIRROR_UPSTREAM is the runtime's (runtime/up.ts): the registry the Berth host's mirror caches, a URL. A
  // host:port there was meant for the relay; refused, rather than a member whose nodes silently have no mirror.
  const upstream = env.BERTH_MIRROR_UPSTREAM;
  if (!m.BERTH_MIRROR_RELAY && upstream && !upstream.includes('://'))
    throw invalid(env, [
      {
        name: 'BERTH_MIRROR_UPSTREAM',
        message: "that is the Berth host mirror's pull-through registry (a URL); the member agent relays to BERTH_MIRROR_RELAY=host:port",
      },
    ]);
  const hostPort = (v: string | undefined) => {
    const hp = v ? HOST_PORT.exec(v) : null;
    return hp ? { host: hp[1].replace(/^\[|\]$/g, ''), port: Number(hp[2]) } : null;
  };
  const relayTo = hostPort(m.BERTH_MIRROR_RELAY);
  const offer = hostPort(m.BERTH_MIRROR_OFFER);
  if (offer && relayTo)
    throw invalid(env, [{ name: 'BERTH_MIRROR_OFFER', message: 'only on the Berth host, which has the mirror: unset BERTH_MIRROR_RELAY there, or this' }]);
  // The relay listens on that port itself: pointed there, every connection would connect to itself.
  if (relayTo && ['127.0.0.1', 'localhost'].includes(relayTo.host) && relayTo.port === c.BERTH_MIRROR_PORT)
    throw invalid(env, [{ name: 'BERTH_MIRROR_RELAY', message: `the relay itself listens on 127.0.0.1:${c.BERTH_MIRROR_PORT} (BERTH_MIRROR_PORT)` }]);
  return {
    egressPolicy: c.BERTH_EGRESS_POLICY,
    egressAllow: c.BERTH_EGRESS_ALLOW === undefined ? undefined : list(c.BERTH_EGRESS_ALLOW),
    mirrorPort: c.BERTH_MIRROR_PORT,
    mirrorRelay: relayTo,
    mirrorOffer: offer,
    incusSocket: c.BERTH_INCUS_SOCKET,
    logLevel: c.LOG_LEVEL,
  };
}

/** The schemas themselves, for the configuration table in the README (config-doc.ts). */
export { schema as configSchema, workshopSchema as workshopConfigSchema, memberSchema as memberConfigSchema };

// The server's core objects as they are made from the parsed configuration: the session manager, previews,
// replays, terminal history, the workshop feature and the app's own dependencies, wired to each other. main.ts
// builds them here around the real engine and store; tests/helpers/app-harness.ts around a fake provider and a
// moved clock. One function for both, so the tests cannot build a server that main.ts would not.
import type { AppDeps } from './app.ts';
import type { Config } from './config.ts';
import type { SandboxProvider } from './engine/provider.ts';
import type { LessonCatalog } from './lesson-catalog.ts';
import type { Metrics } from './metrics.ts';
import { PreviewKeys } from './preview/links.ts';
import { createPreview } from './preview/proxy.ts';
import { RateLimiter } from './rate-limit.ts';
import { Replays } from './replays.ts';
import { type ManagerOptions, SandboxManager } from './sandboxes/manager.ts';
import type { Store } from './store.ts';
import { type Attacher, createAttacher } from './terminal/attach.ts';
import { History } from './terminal/history.ts';
import { learnerTerminals } from './terminal/upgrade.ts';
import type { UpgradeRouter } from './upgrades.ts';
import { createWorkshops } from './workshops/index.ts';
import { createMachines } from './machines/index.ts';
import type { Logger } from './workshops/service.ts';

export type CoreDeps = {
  config: Config;
  provider: SandboxProvider;
  store: Store;
  lessons: LessonCatalog;
  metrics: Metrics;
  log: Logger;
  /** How terminals reach a shell, learners' and instructors' alike (main.ts makes one); without it, the exec path. */
  attacher?: Attacher;
  /** The clock (tests move it); the default is Date.now. */
  now?: () => number;
};

/** The session manager's options: every limit and time from the configuration, none left to a default. */
export function managerOptions(config: Config, { provider, store, lessons, now }: Pick<CoreDeps, 'provider' | 'store' | 'lessons' | 'now'>): ManagerOptions {
  return {
    provider,
    store,
    limits: config.limits,
    poolSize: config.poolSize,
    maxSandboxes: config.maxSandboxes,
    maxNodes: config.maxNodes,
    lifetimeMs: config.lifetimeMs,
    extendMs: config.extendMs,
    idleMs: config.idleMs,
    maxLifetimeMs: config.maxLifetimeMs,
    nodeOpsPerMin: config.nodeOpsPerMin,
    execMaxOutput: config.execMaxOutput,
    seedFiles: (l) => lessons.seedFiles(l),
    now,
  };
}

export function createCore({ config, provider, store, lessons, metrics, log, attacher, now }: CoreDeps) {
  const manager = new SandboxManager(managerOptions(config, { provider, store, lessons, now }));
  const history = new History();
  const preview = createPreview({
    manager,
    provider,
    keys: new PreviewKeys(store.secret('preview')),
    domain: config.previewDomain,
    secureCookies: config.secureCookies,
    log,
  });
  const replays = new Replays({ lessons, log, exec: (s, cmd, node, timeoutMs) => manager.exec(s, cmd, node, timeoutMs) });
  // What holds per-session state forgets a session when it is removed; the metrics count creations and removals.
  manager.listen((event, d) => {
    if (event === 'created') metrics.creation.observe({ kind: d.warm ? 'warm' : 'cold' }, (d.ms ?? 0) / 1000);
    if (event === 'pool-created') metrics.creation.observe({ kind: 'pool' }, (d.ms ?? 0) / 1000);
    if (event === 'removed') {
      metrics.removed.inc({ reason: d.reason ?? 'deleted' });
      history.forgetSession(d.id ?? '');
      preview.forget(d.id ?? '');
      replays.forget(d.id ?? '');
    }
    if (event === 'node-removed') preview.forget(d.id ?? '');
    if (event === 'error') log.error({ err: d.err, reason: d.reason }, 'sandbox error');
    if (event === 'drained') {
      log.warn(
        { machine: d.reason },
        `machine ${d.reason} is drained: none of this server's sessions is left on it. The operator may now run \`incus cluster evacuate ${d.reason}\` or shut it down.`,
      );
    }
  });
  const attach = attacher ?? createAttacher({ provider, mode: 'exec', stateDir: config.stateDir, log });
  const workshops = createWorkshops({ config, store, manager, provider, lessons, replays, history, attacher: attach, log, now });
  // The WebSocket routes in the order they are matched: previews (by host or /p/ path), then the learners' and the
  // instructors' terminals by path (the router answers anything else with a 404).
  const addUpgrades = (router: UpgradeRouter) => {
    router.add({ match: (req) => preview.match(req), handle: (req, socket, head, target) => preview.upgrade(req, socket, head, target) });
    router.add(
      learnerTerminals({
        manager,
        attacher: attach,
        history,
        allowedOrigins: config.allowedOrigins,
        log,
        maxPerSession: config.terminalsPerSession,
        metrics: { terminalBytes: (d, n) => metrics.terminalBytes.inc({ direction: d }, n), terminals: (n) => metrics.terminals.inc(n) },
      }),
    );
    router.add(workshops.terminals);
  };
  /** What createApp needs that is the same for every server; the caller adds how it finds clients, /metrics readers,
   *  the site and the sandbox facts. */
  const appDeps = {
    manager,
    provider,
    lessons,
    metrics,
    log,
    preview,
    replays,
    fileMax: config.fileMax,
    // The machine routes take the instructors' admin token (workshops keep the tokens).
    features: [workshops.feature, createMachines({ manager, auth: workshops.auth, log })],
    createLimiter: new RateLimiter(config.createRatePerMin, 60_000, now),
  } satisfies Partial<AppDeps>;
  return { manager, history, preview, replays, workshops, appDeps, addUpgrades };
}

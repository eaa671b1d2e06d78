// Workshops, put together from what main.ts hands in: tables, admin tokens, the service and its clock, the HTTP
// routes (a Feature for app.ts) and the instructor terminal (an upgrade route for main.ts's router).
// Nothing here reads the environment (config.ts did) or reaches for objects it was not given.
import type { Feature } from '../app.ts';
import type { Config } from '../config.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { LessonCatalog } from '../lesson-catalog.ts';
import { RateLimiter } from '../rate-limit.ts';
import type { Replays } from '../replays.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { Store } from '../store.ts';
import type { History } from '../terminal/history.ts';
import { AdminAuth, writeFirstToken } from './admin-auth.ts';
import { CapacityMeter } from './capacity.ts';
import { WorkshopDb, migrateWorkshops } from './db.ts';
import { workshopRoutes } from './api.ts';
import { mountWorkshops, type Workshops } from './routes.ts';
import { WorkshopService, type Logger } from './service.ts';
import { instructorTerminals } from './shadow.ts';
import type { Attacher } from '../terminal/attach.ts';

export type WorkshopDeps = {
  config: Pick<
    Config,
    'workshops' | 'stateDir' | 'limits' | 'maxSandboxes' | 'maxNodes' | 'poolSize' | 'idleMs' | 'reapIntervalMs' | 'allowedOrigins' | 'publicOrigin'
  >;
  store: Store;
  manager: SandboxManager;
  provider: SandboxProvider;
  lessons: LessonCatalog;
  replays: Replays;
  /** The learners' terminal output: replayed to a watching instructor, forgotten when a reset rebuilds a sandbox. */
  history: History;
  /** How instructor terminals reach a learner's shell, the learners' own way (core.ts makes one for both). */
  attacher: Attacher;
  log: Logger;
  /** The clock (tests move it); the default is Date.now. */
  now?: () => number;
};

export function createWorkshops({ config, store, manager, provider, lessons, replays, history, attacher, log, now }: WorkshopDeps) {
  const wc = config.workshops;
  migrateWorkshops(store.db);
  const auth = new AdminAuth({ stateDir: config.stateDir, envHashes: wc.adminHashes, now });
  const capacity = new CapacityMeter({ provider, manager, stateDir: config.stateDir, serverLimits: config.limits, maxSandboxes: config.maxSandboxes, log });
  const service = new WorkshopService({
    db: new WorkshopDb(store.db),
    store,
    manager,
    provider,
    lessons,
    capacity,
    log,
    serverLimits: config.limits,
    maxNodes: config.maxNodes,
    basePoolSize: config.poolSize,
    prewarmLeadMs: wc.prewarmLeadMs,
    idleMs: config.idleMs,
    now,
    forgetTerminals: (id) => history.forgetSession(id),
  });
  const routes: Workshops = {
    service,
    auth,
    capacity,
    manager,
    lessons,
    replays,
    publicOrigin: config.publicOrigin,
    joinFailures: new RateLimiter(wc.joinFailuresPerMin, 60_000, now),
    joins: new RateLimiter(wc.joinsPerMin, 60_000, now),
  };
  const feature: Feature = {
    mount: (app, { clientAddress, limitBody }) => mountWorkshops(app, routes, clientAddress, limitBody),
    routes: workshopRoutes,
    holds: (s) => !!service.forSession(s),
    feed: (s, after, push) => service.learnerFeed(s, after, push),
  };
  const terminals = instructorTerminals({
    service,
    auth,
    manager,
    provider,
    history,
    allowedOrigins: config.allowedOrigins,
    log,
    attacher,
  });
  let timer: NodeJS.Timeout | undefined;

  return {
    service,
    auth,
    capacity,
    feature,
    terminals,
    /** First run: an instructor token; then the rows of a previous run, and the clock that starts and ends workshops. */
    start() {
      const first = auth.ensureOne();
      if (first) {
        // Written once to a file only root can read, never to the log (logs get copied, shipped and shared); only its
        // SHA-256 is kept in <state>/admin-tokens. More: npm run admin-token.
        const file = writeFirstToken(config.stateDir, first);
        log.warn(
          { file },
          `No instructor token was configured, so one was created: it is in ${file} (readable by this user only). Keep it elsewhere and delete the file.`,
        );
      }
      service.recover();
      let ticking = false;
      const tick = () => {
        if (ticking) return;
        ticking = true;
        service
          .tick()
          .catch((err: unknown) => log.error({ err }, 'workshop tick failed'))
          .finally(() => {
            ticking = false;
          });
      };
      timer = setInterval(tick, Math.min(config.reapIntervalMs, 5000));
      timer.unref();
      tick();
    },
    stop: () => clearInterval(timer),
  };
}

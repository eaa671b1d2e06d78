// Workshops, put together: tables, admin tokens, the service and its clock, the instructor terminal.
// main.ts calls startWorkshops once; app.ts mounts the routes (routes.ts) from what it returns.
import { stateDir as defaultStateDir } from '../../runtime/bootstrap/engine.ts';
import type { Config } from '../config.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { LessonCatalog } from '../lesson-catalog.ts';
import { RateLimiter } from '../rate-limit.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import type { Store } from '../store.ts';
import { AdminAuth, writeFirstToken } from './admin-auth.ts';
import { CapacityMeter } from './capacity.ts';
import { loadWorkshopConfig } from './config.ts';
import { WorkshopDb, migrateWorkshops } from './db.ts';
import { extendOpenapi } from './openapi.ts';
import type { Workshops } from './routes.ts';
import { WorkshopService, type Logger } from './service.ts';
import { instructorTerminals, type LearnerUpgrades } from './shadow.ts';

export { mountWorkshops, type Workshops } from './routes.ts';

export type StartOptions = {
  env: NodeJS.ProcessEnv;
  config: Config;
  store: Store;
  manager: SandboxManager;
  provider: SandboxProvider;
  lessons: LessonCatalog;
  log: Logger;
};

export function startWorkshops({ env, config, store, manager, provider, lessons, log }: StartOptions) {
  const wc = loadWorkshopConfig(env);
  const stateDir = config.stateDir ?? defaultStateDir(env);
  migrateWorkshops(store.db);
  const auth = new AdminAuth({ stateDir, envHashes: wc.adminHashes });
  const first = auth.ensureOne();
  if (first) {
    // Written once to a file only root can read, never to the log (logs get copied, shipped and shared); only its
    // SHA-256 is kept in <state>/admin-tokens. More: npm run admin-token.
    const file = writeFirstToken(stateDir, first);
    log.warn({ file }, `No instructor token was configured, so one was created: it is in ${file} (readable by this user only). Keep it elsewhere and delete the file.`);
  }
  const capacity = new CapacityMeter({ provider, manager, stateDir, serverLimits: config.limits, maxSandboxes: config.maxSandboxes, log });
  const service = new WorkshopService({
    db: new WorkshopDb(store.db), store, manager, provider, lessons, capacity, log,
    serverLimits: config.limits, maxNodes: config.maxNodes, basePoolSize: config.poolSize,
    prewarmLeadMs: wc.prewarmLeadMs, idleMs: config.idleMs,
  });
  service.recover();
  extendOpenapi();

  let ticking = false;
  const timer = setInterval(() => {
    if (!store.db.isOpen) { clearInterval(timer); return; } // the server closed its store: we are done
    if (ticking) return;
    ticking = true;
    service.tick().catch((err: unknown) => log.error({ err }, 'workshop tick failed')).finally(() => { ticking = false; });
  }, Math.min(config.reapIntervalMs, 5000));
  timer.unref();
  void service.tick().catch((err: unknown) => log.error({ err }, 'workshop tick failed'));

  const shadow = instructorTerminals({ service, auth, manager, provider, allowedOrigins: config.allowedOrigins, log });
  const routes: Workshops = {
    service, auth, capacity, joinFailures: new RateLimiter(wc.joinFailuresPerMin), joins: new RateLimiter(wc.joinsPerMin),
    publicOrigin: env.BERTH_PUBLIC_ORIGIN,
  };
  return {
    routes, service,
    /** The server's upgrade handler: the instructor terminal path here, everything else to the learners' handler. */
    upgrade: (req: Parameters<LearnerUpgrades>[0], socket: Parameters<LearnerUpgrades>[1], head: Parameters<LearnerUpgrades>[2], learners: LearnerUpgrades) => shadow(req, socket, head, learners),
    stop: () => clearInterval(timer),
  };
}

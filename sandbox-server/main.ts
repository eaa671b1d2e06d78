// Berth's composition root: the one place objects are made and wired. Configuration (config.ts, read once),
// engine, sessions, the features (workshops, previews, terminals), HTTP and upgrades on one port.
import { getRequestListener } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { getConnInfo } from '@hono/node-server/conninfo';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { join, relative, resolve } from 'node:path';
import pino from 'pino';
import { ensureEngine } from '../runtime/bootstrap/engine.ts';
import { createApp } from './app.ts';
import { createCore } from './core.ts';
import { hashToken } from './auth.ts';
import { ConfigError, loadConfig } from './config.ts';
import { connect } from './engine/docker.ts';
import { LoopDisks } from './engine/disks.ts';
import { SandboxDns } from './engine/dns.ts';
import { allowAddress, aptHosts, applyFirewall } from './engine/firewall.ts';
import { LocalDockerProvider } from './engine/local-docker.ts';
import { chooseProvider } from './engine/choose.ts';
import { IncusClient } from './engine/incus/client.ts';
import { IncusProvider } from './engine/incus/provider.ts';
import type { SandboxProvider } from './engine/provider.ts';
import { type FleetCheck, fleetCheck, GROUP, syncPlacement } from './engine/incus/cluster.ts';
import { loadCatalog } from './lesson-catalog.ts';
import { createMetrics } from './metrics.ts';
import { Store } from './store.ts';
import { createAttacher } from './terminal/attach.ts';
import { UpgradeRouter } from './upgrades.ts';
import { sandboxFacts } from './sandbox-facts.ts';

const root = resolve(import.meta.dirname, '..');

/**
 * One learner's input must never end the server for everyone. Anything that still escapes every handler is
 * logged with its stack (an operator must see it and fix the cause) and the process goes on serving.
 */
function guardAgainstCrashes(log: pino.Logger) {
  process.on('uncaughtException', (err, origin) => log.error({ err, origin }, 'uncaught exception: kept running'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection: kept running'));
}

/** Whether the Incus behind `client` is a fleet, and why the server must not start on it; an Incus that cannot be reached is a config error too. */
async function fleetOf(client: IncusClient, policy: string): Promise<FleetCheck> {
  try {
    const found = await fleetCheck(client, policy);
    // The server does not start on it: its kept-alive connections must not hold the process open.
    if (found.refused) client.close();
    return found;
  } catch (err) {
    client.close();
    const where = client.remote ? `BERTH_INCUS_URL: ${client.origin}` : `BERTH_INCUS_SOCKET: ${client.socketPath}`;
    throw new ConfigError(`${where} could not be asked about its members: ${(err as Error).message}`);
  }
}

export async function startServer(env: NodeJS.ProcessEnv = process.env, { guardProcess = false } = {}) {
  const config = loadConfig(env);
  const log = pino({ level: config.logLevel });
  if (guardProcess) guardAgainstCrashes(log);
  const providerKind = config.incus.remote && config.provider === 'auto' ? 'incus' : await chooseProvider(config.provider, config.incus, log);
  const incus = providerKind === 'incus' ? new IncusClient({ socketPath: config.incus.socket, remote: config.incus.remote }) : null;
  // A fleet (a cluster of several, or a remote Incus): nodes run on other machines, where the member agents
  // hold them in (engine/incus/cluster.ts); refused before anything starts when no machine is ready for them.
  const { fleet, refused } = incus ? await fleetOf(incus, config.egressPolicy) : { fleet: false, refused: null };
  if (refused) throw new ConfigError(refused);
  const engine = await ensureEngine({ env, log: (m) => log.info(m) });
  const docker = connect(engine.host);
  if (fleet) log.info({ group: GROUP }, 'learner nodes run on Incus cluster members: each session placed among those ready for learners');
  const allowHosts = config.egressAllow ?? aptHosts();
  // A remote engine's bridges live on its own host, where these rules would have to go; a fleet's bridges live
  // on its members, where their agents apply the same rules and answer DNS.
  const firewall = fleet
    ? { enforced: false, reason: 'nodes run on Incus cluster members, held in by the member agent on each', allowed: [], forward: undefined }
    : engine.socketPath
      ? await applyFirewall(config.egressPolicy, allowHosts)
      : { enforced: false, reason: `the host engine is remote (${engine.host})`, allowed: [], forward: undefined };
  const metrics = createMetrics();
  // Where the firewall holds sandboxes in, their names are answered by Berth too (engine/dns.ts).
  const dns =
    firewall.enforced && config.egressPolicy !== 'open'
      ? new SandboxDns({
          allowed: config.egressPolicy === 'allowlist' ? allowHosts : [],
          log,
          onAddresses: (_name, ips) => {
            for (const ip of ips) allowAddress(ip);
          },
          onQuery: (answer) => metrics.dnsQueries.inc({ answer }),
        })
      : null;
  if (firewall.enforced) log.info({ policy: config.egressPolicy, allowed: firewall.allowed, chain: firewall.forward }, 'sandbox firewall applied');
  else if (fleet) log.info({ policy: config.egressPolicy, reason: firewall.reason }, 'sandbox firewall and DNS: on each cluster member');
  else log.warn({ reason: firewall.reason }, 'sandbox firewall NOT applied: sandboxes can reach the host and the outside');
  const store = new Store(join(config.stateDir, 'berth.db'));
  const disks = LoopDisks.usable(engine.socketPath) ? new LoopDisks(join(config.stateDir, 'disks'), config.diskReserveBytes) : null;
  if (!disks) log.warn('per-node disks unavailable (needs root and a local engine): engine storage is not size-limited');
  const provider = incus
    ? new IncusProvider({
        client: incus,
        image: config.incus.image,
        instance: store.instanceId(),
        dns,
        mirrorPort: config.mirrorPort,
        spareBridges: config.incus.spareBridges,
        placementGroup: fleet ? GROUP : null,
        agentDns: fleet && config.egressPolicy !== 'open',
        previewRelay: config.incus.previewRelay,
      })
    : new LocalDockerProvider({ docker, image: config.engineImage, instance: store.instanceId(), disks, dns });
  await provider.restoreDns();
  const lessonsDir = resolve(config.lessonsDir ?? join(root, 'lessons'));
  const lessons = await loadCatalog(lessonsDir, log);

  // One way to a tab's shell for learners and instructors alike (terminal/attach.ts).
  const attacher = createAttacher({ provider, mode: config.terminalAttach, stateDir: config.stateDir, log });
  const core = createCore({ config, provider, store, lessons, metrics, log, attacher });
  const { manager, preview, workshops, appDeps } = core;
  const recovered = await manager.recover();
  log.info(recovered, 'recovered sandboxes from a previous run');
  manager.startPool();
  workshops.start();

  const siteDir = resolve(config.siteDir ?? join(root, 'site', 'dist'));
  const app = createApp({
    ...appDeps,
    sandboxFacts: sandboxFacts(providerKind),
    metricsAuthorized: (token) => !!token && (config.metricsHashes.includes(hashToken(token)) || workshops.auth.check(token)),
    clientAddress: (c) => (config.trustProxy ? c.req.header('x-forwarded-for')?.split(',')[0].trim() : undefined) ?? getConnInfo(c).remote.address ?? 'unknown',
    serveSite: existsSync(siteDir)
      ? (a) => {
          // Built files are named by their content, so they never change: browsers may keep them.
          a.use('/_astro/*', async (c, next) => {
            await next();
            if (c.res.status === 200) c.header('Cache-Control', 'public, max-age=31536000, immutable');
          });
          // The site build writes .br/.gz beside each text file (site/build.ts).
          a.use('/*', serveStatic({ root: relative(process.cwd(), siteDir) || '.', precompressed: true }));
        }
      : undefined,
  });

  // Upgrades: the core's routes (previews, then terminals by path); anything else is a 404.
  const upgrades = new UpgradeRouter(log);
  core.addUpgrades(upgrades);

  const listener = getRequestListener(app.fetch);
  // Previews are proxied below Hono: bodies stream both ways untouched, whatever their size.
  const server = createServer((req, res) => {
    const target = preview.match(req);
    // Neither path may reject: an unhandled rejection would end the process for every learner.
    if (target)
      preview.http(req, res, target).catch((err) => {
        log.error({ err }, 'preview failed');
        res.destroy();
      });
    else
      Promise.resolve(listener(req, res)).catch((err) => {
        log.error({ err }, 'request failed');
        res.destroy();
      });
  });
  // Upgraded sockets (terminals, previews) are not HTTP connections any more: close() must end them itself.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req, socket, head) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    upgrades.handle(req, socket, head);
  });
  const reaper = setInterval(() => manager.reap().catch((err) => log.error({ err }, 'reaper failed')), config.reapIntervalMs);
  reaper.unref();
  // Sessions whose machine went away (an Incus cluster member offline) are told so within seconds of Incus
  // noticing; with every member online a check is one request for the members.
  const lostWatch = setInterval(
    () =>
      manager
        .findLost()
        .then((n) => n && log.warn({ lost: manager.lostSessions() }, `${n} session(s) lost with their machine`))
        .then(() => (provider as SandboxProvider).reserveBridges?.())
        .catch((err) => log.error({ err }, 'looking for lost sessions failed')),
    Math.min(config.reapIntervalMs, 5000),
  );
  lostWatch.unref();
  // A fleet's placement follows its members: one whose agent stops reporting (or that is drained) leaves the
  // cluster group new sessions are placed in, and comes back with its agent's next report.
  const placementWatch = fleet
    ? setInterval(
        () =>
          syncPlacement(incus!, config.egressPolicy)
            .then((p) => p.changed && log.warn({ ready: p.ready, unready: p.unready }, 'machines taking new sessions changed'))
            .catch((err) => log.error({ err }, 'keeping placement to the ready machines failed')),
        10_000,
      )
    : undefined;
  placementWatch?.unref();
  // A drain started or cancelled (here or seen from another server) moves placement at once, not at the next sync.
  if (fleet) {
    manager.listen((event) => {
      if (event === 'drains')
        void syncPlacement(incus!, config.egressPolicy).catch((err) => log.error({ err }, 'keeping placement to the ready machines failed'));
    });
  }
  // Machines being drained for maintenance (an operator's POST /api/machines/:name/drain, here or on another Berth
  // server of the cluster): their sessions end as they fall idle, the rest at the deadline.
  const drainWatch = setInterval(
    () =>
      manager
        .drainTick()
        .then((n) => n && log.warn({ ended: n }, `${n} session(s) ended for their machine's maintenance`))
        .catch((err) => log.error({ err }, 'applying machine drains failed')),
    Math.min(config.reapIntervalMs, 5000),
  );
  drainWatch.unref();

  await new Promise<void>((r) => server.listen(config.port, config.host, r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // With PORT=0 the real port is known only now; the site is served from it.
  config.allowedOrigins.add(`http://localhost:${port}`).add(`http://127.0.0.1:${port}`);
  log.info({ port, engine: engine.host, site: existsSync(siteDir) ? siteDir : 'not built' }, `Berth listening on http://localhost:${port}`);

  return {
    port,
    manager,
    store,
    config,
    async close({ keepSandboxes = false } = {}) {
      clearInterval(reaper);
      clearInterval(lostWatch);
      clearInterval(placementWatch);
      clearInterval(drainWatch);
      workshops.stop();
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      if (!keepSandboxes) await manager.shutdown();
      dns?.stopAll();
      store.close();
    },
  };
}

if (import.meta.main) {
  try {
    const s = await startServer(process.env, { guardProcess: true });
    const stop = async () => {
      await s.close();
      process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    if (err instanceof Error && 'code' in err) {
      console.error(`Berth could not start: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

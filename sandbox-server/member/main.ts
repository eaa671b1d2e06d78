// The member agent: what an Incus cluster member needs so that learner nodes on it are held in as on the Berth
// host (`npm run member`, as root, on every member machine, the Berth host included). Four duties:
//   1. the sandbox firewall (engine/firewall.ts) with the egress policy and allow-list, as the server applies it;
//   2. Berth's DNS responder (engine/dns.ts) on the gateway of every sandbox bridge on this machine (bridges.ts),
//      names it resolves let through the firewall (allowAddress) as the server does;
//   3. the registry mirror relay on 127.0.0.1:BERTH_MIRROR_PORT to the Berth host's mirror (relay.ts);
//   4. a heartbeat in this member's Incus config that says the three hold (heartbeat.ts).
// Firewall rules outlive the agent on purpose: they are kernel state, and nodes must stay held in.
import pino from 'pino';
import { ConfigError, loadMemberConfig } from '../config.ts';
import { SandboxDns } from '../engine/dns.ts';
import { allowAddress, applyFirewall, aptHosts } from '../engine/firewall.ts';
import { IncusClient } from '../engine/incus/client.ts';
import { BridgeWatch } from './bridges.ts';
import { AGENT_KEY, HEARTBEAT_MS, Heartbeat } from './heartbeat.ts';
import { MirrorRelay, mirrorAnswers } from './relay.ts';

/** The agent cannot do its work here (no firewall, the mirror port taken): it exits rather than run half. */
export class AgentError extends Error {}

export type AgentOptions = { bridgeIntervalMs?: number; heartbeatMs?: number; log?: pino.Logger };

export async function startAgent(env: NodeJS.ProcessEnv = process.env, opts: AgentOptions = {}) {
  const config = loadMemberConfig(env);
  const log = opts.log ?? pino({ level: config.logLevel });

  // 1. The firewall first: without it nodes here could reach this machine and other sessions, so no other duty starts.
  const allowHosts = config.egressAllow ?? aptHosts();
  const firewall = await applyFirewall(config.egressPolicy, allowHosts);
  if (!firewall.enforced)
    throw new AgentError(`the sandbox firewall could not be applied (${firewall.reason}); the member agent must run as root with iptables`);
  log.info({ duty: 'firewall', policy: config.egressPolicy, allowed: firewall.allowed, chain: firewall.forward }, 'sandbox firewall applied');

  // 2. DNS on each bridge's gateway, where the firewall holds nodes in (with an open policy they use the host's resolvers).
  const dns =
    config.egressPolicy !== 'open'
      ? new SandboxDns({
          allowed: config.egressPolicy === 'allowlist' ? allowHosts : [],
          log,
          onAddresses: (_name, ips) => {
            for (const ip of ips) allowAddress(ip);
          },
        })
      : null;
  const watch = dns
    ? new BridgeWatch({
        intervalMs: opts.bridgeIntervalMs,
        onUp: async (bridge, gateway) => {
          const ok = await dns.serve(gateway);
          if (ok) log.info({ bridge, gateway }, 'DNS responder serving a sandbox bridge');
          return ok;
        },
        onDown: (bridge, gateway) => {
          dns.stop(gateway);
          log.info({ bridge, gateway }, 'DNS responder stopped: the bridge is gone');
        },
        onError: (err) => log.error({ err }, 'looking at the sandbox bridges failed'),
      })
    : null;
  await watch?.start();
  if (watch)
    log.info(
      { duty: 'dns', bridges: Object.fromEntries(watch.bridges), pollMs: opts.bridgeIntervalMs ?? 1000 },
      'DNS responder following the sandbox bridges (bs-*)',
    );
  else log.info({ duty: 'dns', policy: config.egressPolicy }, 'DNS responder off: with an open policy nodes use the host resolvers');

  // 3. The mirror: relayed to the Berth host's, or this machine's own (the Berth host), which it may offer to
  // the other members on the cluster network.
  const onError = (err: Error) => log.warn({ err }, 'mirror relay connection failed');
  const relay = config.mirrorRelay
    ? new MirrorRelay({ port: config.mirrorPort, to: config.mirrorRelay, onError })
    : config.mirrorOffer
      ? new MirrorRelay({ host: config.mirrorOffer.host, port: config.mirrorOffer.port, to: { host: '127.0.0.1', port: config.mirrorPort }, onError })
      : null;
  try {
    await relay?.start();
  } catch (err) {
    await watch?.stop();
    const where = config.mirrorRelay ? `127.0.0.1:${config.mirrorPort} (BERTH_MIRROR_PORT)` : `${relay?.host}:${relay?.port} (BERTH_MIRROR_OFFER)`;
    throw new AgentError(`the mirror relay cannot listen on ${where}: ${(err as Error).message}`);
  }
  if (relay) log.info({ duty: 'mirror', listen: `${relay.host}:${relay.port}`, upstream: `${relay.to.host}:${relay.to.port}` }, 'mirror relay listening');
  else log.info({ duty: 'mirror', port: config.mirrorPort }, 'mirror relay off (BERTH_MIRROR_RELAY unset): this machine has the mirror');

  // 4. The heartbeat, once the three above hold.
  const client = new IncusClient({ socketPath: config.incusSocket });
  const heartbeat = new Heartbeat({
    client,
    policy: config.egressPolicy,
    mirror: () => mirrorAnswers(config.mirrorPort),
    intervalMs: opts.heartbeatMs,
    log,
  });
  const beating = await heartbeat.start();
  if (beating)
    log.info(
      { duty: 'heartbeat', member: heartbeat.member, key: AGENT_KEY, everyMs: opts.heartbeatMs ?? HEARTBEAT_MS, last: heartbeat.last },
      'heartbeat started',
    );
  else log.warn({ duty: 'heartbeat', socket: config.incusSocket }, 'heartbeat off: this incusd is not a cluster member');

  return {
    config,
    heartbeat,
    watch,
    relay,
    /** Removes the heartbeat, stops serving; the firewall stays. */
    async stop() {
      await heartbeat.stop();
      await watch?.stop();
      await relay?.stop();
      dns?.stopAll();
      log.info('member agent stopped (the sandbox firewall stays in place)');
    },
  };
}

if (import.meta.main) {
  try {
    const log = pino({ level: loadMemberConfig(process.env).logLevel });
    const started = startAgent(process.env, { log });
    // Listened for from the start: a signal while the duties come up stops them once they are up (the
    // heartbeat written meanwhile is removed, not left to go stale).
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      started
        .then((agent) => agent.stop())
        .then(
          () => process.exit(0),
          () => process.exit(1),
        );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    await started;
    // Once the duties are up, as the server: anything that escapes every handler is logged, and they go on (a
    // failure before this point ends the process instead: an agent that did not start must not linger).
    process.on('uncaughtException', (err, origin) => log.error({ err, origin }, 'uncaught exception: kept running'));
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection: kept running'));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof AgentError) {
      console.error(`Berth member agent could not start: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

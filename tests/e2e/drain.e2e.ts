// Planned maintenance in a real browser (Debian's Chromium through playwright-core): a learner's sandbox on a real
// two-member Incus cluster formed on this machine (tests/helpers/incus-cluster.ts), served by the server's own parts
// as main.ts puts them together (createCore, createApp with the built site, the learner terminal upgrade) around
// the Incus provider, since main.ts refuses a cluster of several until the firewall reaches remote members. The
// operator drains the learner's machine: the workbench shows the banner with the time; at the deadline (the
// server's clock moved on, the terminal still open) the sandbox ends and the page shows the maintenance screen with
// "Start a new sandbox". Needs root, incusd, the learner image and Chromium; without them the test is skipped.
import test from 'ava';
import { getRequestListener } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { chromium, type Browser } from 'playwright-core';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { stateDir } from '../../runtime/bootstrap/engine.ts';
import { INCUSD } from '../../runtime/incus/daemons.ts';
import { buildSite } from '../../site/build.ts';
import { createApp } from '../../sandbox-server/app.ts';
import { hashToken } from '../../sandbox-server/auth.ts';
import { loadConfig } from '../../sandbox-server/config.ts';
import { createCore } from '../../sandbox-server/core.ts';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { loadCatalog } from '../../sandbox-server/lesson-catalog.ts';
import { createMetrics } from '../../sandbox-server/metrics.ts';
import { sandboxFacts } from '../../sandbox-server/sandbox-facts.ts';
import { Store } from '../../sandbox-server/store.ts';
import { UpgradeRouter } from '../../sandbox-server/upgrades.ts';
import { CHROMIUM } from '../helpers/chromium.ts';
import { IncusCluster } from '../helpers/incus-cluster.ts';

const root = resolve(import.meta.dirname, '..', '..');
const dist = join(root, 'site', 'dist');
const shots = join(root, 'tests', 'artifacts', 'e2e');
const LESSON = '02-first-containers';
const ADMIN = 'berth_admin_drain-e2e-token-0123456789abcdef';
const imageDir = join(stateDir(process.env), 'incus');
const image = existsSync(imageDir) ? readdirSync(imageDir).find((f) => /^berth-learner-.*\.tar$/.test(f)) : undefined;
const usable = process.getuid?.() === 0 && existsSync(INCUSD) && image !== undefined && existsSync(CHROMIUM.executablePath);
const it = usable ? test.serial : test.serial.skip;

let cluster: IncusCluster | undefined;
let provider: IncusProvider | undefined;
let store: Store | undefined;
let http: Server | undefined;
let browser: Browser | undefined;
let state = '';
const sessions: string[] = [];
const logs: string[] = [];

/** The server's parts on the cluster's member 1, as main.ts wires them; its clock can be moved on. */
async function serve() {
  state = mkdtempSync(join(tmpdir(), 'berth-drain-e2e-'));
  const config = loadConfig({
    BERTH_STATE_DIR: state,
    BERTH_ADMIN_TOKEN_SHA256: hashToken(ADMIN),
    BERTH_POOL_SIZE: '0',
    BERTH_IDLE_TIMEOUT_MIN: '240',
    BERTH_SANDBOX_MEMORY: '1g',
    BERTH_SANDBOX_PIDS: '1024',
    BERTH_SANDBOX_DISK: '3g',
  });
  const clock = { offset: 0 };
  const now = () => Date.now() + clock.offset;
  const at = (level: string) => (o: object, m: string) => void logs.push(`${level} ${m} ${JSON.stringify(o)}`);
  const log = { info: at('info'), warn: at('warn'), error: at('error') };
  store = new Store(join(state, 'berth.db'));
  const lessons = await loadCatalog(join(root, 'lessons'), log);
  const core = createCore({ config, provider: provider!, store, lessons, metrics: createMetrics(), log, now });
  const app = createApp({
    ...core.appDeps,
    sandboxFacts: sandboxFacts('incus', false),
    clientAddress: () => '127.0.0.1',
    serveSite: (a) => a.use('/*', serveStatic({ root: relative(process.cwd(), dist) || '.', precompressed: true })),
  });
  const upgrades = new UpgradeRouter(log);
  core.addUpgrades(upgrades);
  http = createServer(getRequestListener(app.fetch));
  http.on('upgrade', (req, socket, head) => upgrades.handle(req, socket, head));
  await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  config.allowedOrigins.add(`http://127.0.0.1:${port}`);
  return { base: `http://127.0.0.1:${port}`, manager: core.manager, clock };
}

test.before(async (t) => {
  if (!usable) return;
  mkdirSync(shots, { recursive: true });
  cluster = new IncusCluster(mkdtempSync(join(tmpdir(), 'berth-drain-cluster-')), (m) => t.log(m));
  await cluster.start(join(imageDir, image!));
  provider = new IncusProvider({
    client: new IncusClient({ socketPath: cluster.members[0].socket }),
    image: 'berth-learner',
    instance: 'drain-e2e',
    mirrorPort: null,
  });
  await buildSite();
});

test.after.always(async (t) => {
  await browser?.close().catch(() => {});
  http?.closeAllConnections();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  for (const id of sessions) await provider?.removeSandbox(id).catch((err: unknown) => t.log(`removing ${id}: ${(err as Error).message}`));
  store?.close();
  const problems = await cluster?.stop();
  if (problems?.length) console.error(`cluster teardown:\n  ${problems.join('\n  ')}`);
  if (state) rmSync(state, { recursive: true, force: true });
});

it('the learner sees the maintenance banner with its time, then the maintenance screen with "Start a new sandbox"', async (t) => {
  const { base, manager, clock } = await serve();
  browser = await chromium.launch(CHROMIUM);
  const page = await browser.newPage();
  const res = await page.goto(`${base}/lessons/${LESSON}/`);
  t.is(res?.status(), 200);
  await page.getByRole('button', { name: 'Start sandbox' }).click();
  await page.waitForFunction(() => document.getElementById('workbench')?.dataset.state === 'ready', undefined, { timeout: 90_000 });
  const session = await page.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? '{}') as { id: string }, `berth.session.${LESSON}`);
  sessions.push(session.id);
  const machine = await provider!.machineOf(session.id);
  t.truthy(machine);
  t.false(await page.locator('[data-maintenance]').isVisible());

  const r = await fetch(`${base}/api/machines/${machine}/drain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ minutes: 30 }),
  });
  t.is(r.status, 200, await r.clone().text());
  const { drain } = (await r.json()) as { drain: { deadline: string } };
  const banner = page.locator('[data-maintenance]');
  await banner.waitFor({ state: 'visible', timeout: 10_000 });
  const hhmm = await page.evaluate((d) => new Date(d).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), drain.deadline);
  t.is(
    await banner.textContent(),
    `This machine goes down for maintenance at ${hhmm}: save your work (the Editor tab downloads the workspace); a new sandbox starts elsewhere.`,
  );
  await page.screenshot({ path: join(shots, 'drain-banner.png') });
  t.is(await page.locator('#workbench').getAttribute('data-state'), 'ready', 'the terminal stays: it is in use');

  // The deadline: the open terminal does not keep it any longer.
  clock.offset += 31 * 60_000;
  t.is(await manager.drainTick(), 1);
  await page.waitForFunction(() => document.getElementById('workbench')?.dataset.state === 'expired', undefined, { timeout: 20_000 });
  t.is(await page.locator('[data-overlay-title]').textContent(), "Your sandbox's machine was taken down for maintenance");
  t.regex((await page.locator('[data-overlay-text]').textContent()) ?? '', /taken down for planned maintenance.*Start a new sandbox/);
  t.true(await page.getByRole('button', { name: 'Start a new sandbox' }).isVisible());
  t.false(await banner.isVisible(), 'the banner goes with the sandbox');
  await page.screenshot({ path: join(shots, 'drain-ended.png') });
  t.deepEqual(await provider!.instances(session.id), []);
  t.true(logs.some((l) => l.includes(`incus cluster evacuate ${machine}`)));
  await fetch(`${base}/api/machines/${machine}/drain`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } });
});

// `npm test`: brings the runtime up (engine, catalog, mirror, learner engine image), type-checks, lints, then runs
// every suite against the real engine, and ends with one plain line: "N passed, N failed".
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from '../runtime/bootstrap/host-packages.ts';
import { runtimeUp } from '../runtime/up.ts';
import { mergeRuns, parseTap, type RetryPlan, type RunResult, retryPlan } from './lib/suite-runs.ts';

// What the suites need on the host beyond the runtime's own packages: Chromium for the e2e suites
// (Playwright's own browser download cannot work here), curl for the network checks of the escape suite.
// Installed here so `npm ci && npm test` is enough on a fresh Debian machine, with no apt line in CI.
const TEST_PACKAGES = ['chromium', 'curl'];

const root = join(import.meta.dirname, '..');
let passed = 0;
let failed = 0;
const failures: string[] = [];
const flaky: string[] = [];
// Every step and suite is timed, with the share of the machine's CPU that was busy meanwhile (from /proc/stat):
// CI's log then says where the time goes (the whole run must stay well under CI's limit on two cores), and which
// suites mostly wait (cores idle) rather than work (engines starting, layers unpacking).
const timings: { name: string; secs: number; busy: number }[] = [];
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + (f[4] ?? 0) };
}
async function timed(name: string, f: () => Promise<unknown>) {
  const t = performance.now();
  const c = cpuTimes();
  await f();
  const d = cpuTimes();
  const total = d.total - c.total;
  timings.push({ name, secs: (performance.now() - t) / 1000, busy: total ? 1 - (d.idle - c.idle) / total : 0 });
}

function run(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult & { out: string }> {
  return new Promise((resolve) => {
    console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b;
      process.stdout.write(b);
    });
    child.on('close', (code) => resolve({ code, out, tap: parseTap(out) }));
  });
}

/** A step that is not a test file (typecheck, lint, the bench smoke run): one result, by its exit code. */
async function step(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await run(name, cmd, args, env);
  if (r.code === 0) passed++;
  else {
    failed++;
    failures.push(`${name} (exit ${r.code})`);
  }
}

/**
 * One ava run of `files`, counted test by test. With `retry`, a failure gets one more run (tests/lib/suite-runs.ts
 * says what runs again and why); a test that passes then counts as passed and is listed as flaky.
 */
async function suite(name: string, files: string[], env: NodeJS.ProcessEnv = {}, retry = true) {
  const first = await run(name, process.execPath, [ava, '--tap', ...files], env);
  const source = files.map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
  const plan: RetryPlan = retry ? retryPlan(first.code, first.tap, source) : { kind: 'none' };
  let second: RunResult | undefined;
  if (plan.kind !== 'none') {
    const what = plan.kind === 'match' ? `the failed test${plan.titles.length > 1 ? 's' : ''}` : `the whole file, ${plan.why}`;
    const match = plan.kind === 'match' ? plan.titles.flatMap((t) => ['--match', t]) : [];
    second = await run(`${name} (again: ${what})`, process.execPath, [ava, '--tap', ...match, ...files], env);
  }
  const outcome = mergeRuns(first, plan, second);
  passed += outcome.passed;
  failed += outcome.failed.length;
  failures.push(...outcome.failed.map((t) => `${name}: ${t}`));
  flaky.push(...outcome.flaky.map((t) => `${name}: ${t}`));
}

// The bin path comes from ava's own package.json: it moved between majors (cli.mjs → cli.js).
const avaPkg = JSON.parse(readFileSync(join(root, 'node_modules', 'ava', 'package.json'), 'utf8')) as { bin: { ava: string } };
const ava = join(root, 'node_modules', 'ava', avaPkg.bin.ava);
const suites = (dir: string, pattern = /\.test\.ts$/) =>
  existsSync(join(root, 'tests', dir))
    ? readdirSync(join(root, 'tests', dir))
        .filter((f) => pattern.test(f))
        .map((f) => `tests/${dir}/${f}`)
    : [];

const t0 = performance.now();
try {
  await timed('bring-up', runtimeUp);
  const t1 = performance.now();
  ensurePackages(TEST_PACKAGES, (m) => console.error(`[tests] ${m}`));
  console.error(`[tests] test packages: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
} catch (err) {
  console.error(`runtime bring-up failed: ${(err as Error).message}`);
  console.log('\n0 passed, 1 failed');
  process.exit(1);
}

// The site is rebuilt only when its sources or the lessons changed; the e2e suite and the server use it.
await timed('site build', async () => {
  // The site build is not a test, but its failure must fail the run.
  const r = await run('site build', process.execPath, [join(root, 'site', 'build.ts')]);
  if (r.code !== 0) {
    failed++;
    failures.push(`site build (exit ${r.code})`);
  }
});
await timed('typecheck', () => step('typecheck', process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit']));
// Lint and format (biome.jsonc): any lint error or warning, or a file the formatter would change, fails the step.
await timed('lint', () =>
  step('lint', process.execPath, [join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'), 'check', '--error-on-warnings', '.']),
);
if (existsSync(join(root, 'lessons', 'lib', 'check-cli.ts'))) await step('lessons:check', process.execPath, [join(root, 'lessons', 'lib', 'check-cli.ts')]);
// Unit tests are pure and quick: a failure there is never the machine's, so they get no second run.
await timed('unit', () => suite('unit', suites('unit'), {}, false));
// Suites that start servers and sandboxes run one file at a time: the machine has two cores.
// Fakes are most of a lesson's verification: 1616 s of the 2261 s the 14 lessons took with all 266 fakes (2026-12-03,
// two at a time: 1184 s of the whole run, its largest part). npm test tries the first fake of every check (89: each
// check shown to refuse a shortcut on every run); a lesson's author runs all of its fakes
// (`BERTH_VERIFY_ONLY=NN BERTH_VERIFY_FAKES=NN`, lessons/README.md), and `BERTH_VERIFY_FAKES=1` tries every fake of
// every lesson. The skip-to-last-step proof replays a lesson once more; npm test proves the replay route on two:
// every step is covered by the in-order run, since a check may only look (the verifier proves it) and skipping
// replays the same commands; `BERTH_VERIFY_REPLAY=1` proves the route for every lesson's last step.
const LESSON_ENV = {
  BERTH_VERIFY_FAKES: process.env.BERTH_VERIFY_FAKES ?? 'first',
  BERTH_VERIFY_REPLAY: process.env.BERTH_VERIFY_REPLAY ?? '01,05',
};
// One ava run per file, timed, at the cost of ava's start-up per file (about a second).
// Where Incus is set up, the learner's and the instructor's pages are tried in the browser on Incus only (below):
// that is the engine `npm start` gives learners there, and the Docker provider's terminals and previews are
// proved by the integration suites. Without Incus they run here, on the Docker provider.
const incusSocket = process.env.INCUS_SOCKET ?? join(process.env.INCUS_DIR ?? '/var/lib/incus', 'unix.socket');
const PAGES = ['tests/e2e/site.e2e.ts', 'tests/e2e/workshop.e2e.ts'];
for (const kind of ['integration', 'security', 'lessons', 'e2e']) {
  for (const file of suites(kind, kind === 'e2e' ? /\.e2e\.ts$/ : undefined)) {
    if (PAGES.includes(file) && existsSync(incusSocket)) continue;
    await timed(file, () => suite(file, [file], kind === 'lessons' ? LESSON_ENV : {}));
  }
}

// The benchmark harness, with tiny counts: it must run end to end; its figures are not judged here.
await timed('bench smoke', () =>
  step('bench smoke', process.execPath, [join(root, 'tests', 'bench', 'run.ts'), '--quick', '--no-peer', '--out', 'smoke'], { BERTH_BENCH_SMOKE: '1' }),
);

// The lessons once more on the Incus provider (without replays, which do not depend on the provider, and with
// the fakes only of lesson 03, whose `--pid host` shortcuts only a rootful engine lets a learner take), and the
// e2e suites: every lesson must stay true, and the pages work, on the Docker 26 nodes
// that Incus gives learners. Incus is what `npm start` gives learners wherever the bring-up could set it
// up (BERTH_PROVIDER=auto).
if (existsSync(incusSocket)) {
  const file = 'tests/lessons/verify.test.ts';
  await timed(`${file} (incus)`, () =>
    suite(`${file} (incus)`, [file], { BERTH_PROVIDER: 'incus', BERTH_EGRESS_ALLOW: hostname(), BERTH_VERIFY_FAKES: '03', BERTH_VERIFY_REPLAY: '0' }),
  );
  // The learner's page on Incus nodes (terminal, editor, previews, pushed ports, downloads) and a workshop
  // (join, checks, shadow, take-over, end); and the server's own rules on the nodes learners get: isolation
  // between sandboxes, bad input, idle reaping, and a crash followed by restart adoption that leaks nothing
  // (the other integration suites run on the Docker provider above; the Incus-only ones run there too).
  for (const page of ['tests/integration/sandbox.test.ts', 'tests/integration/lifecycle.test.ts', ...PAGES]) {
    await timed(`${page} (incus)`, () => suite(`${page} (incus)`, [page], { BERTH_PROVIDER: 'incus', BERTH_EGRESS_ALLOW: hostname() }));
  }
} else console.log(`\n=== lessons and site on Incus: skipped (no Incus socket at ${incusSocket})`);

console.log('\nSuites, slowest first (CPU: share of both cores busy meanwhile):');
for (const { name, secs, busy } of timings.sort((a, b) => b.secs - a.secs))
  console.log(`  ${secs.toFixed(0).padStart(5)} s  CPU ${(busy * 100).toFixed(0).padStart(3)} %  ${name}`);
console.log(`\nTests took ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
if (flaky.length) console.log(`Flaky (failed, then passed when run again; counted as passed, worth a look):\n  ${flaky.join('\n  ')}`);
if (failures.length) console.log(`Failures:\n  ${failures.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

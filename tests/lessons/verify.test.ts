// Lesson verification: every lesson runs step by step on a real sandbox; each check must fail before
// its step and pass after it, every fake of it (lessons/<id>/fakes/) must fail it on the state before
// the step, every command must succeed unless marked `# fails`, and each exercise's solution must pass.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { actionsFor, formatReport, loadFakes, loadLessons, runActions, verifyLesson, type LessonReport } from '../../lessons/lib/index.ts';
import type { Fake } from '../../lessons/lib/fakes.ts';
import type { Exec } from '../../lessons/lib/replay.ts';
import { type Created, createSession, startServer, type TestServer } from '../helpers/server.ts';

const dir = join(import.meta.dirname, '..', '..', 'lessons');
// BERTH_VERIFY_ONLY=03,14 verifies just the lessons whose ids start with those prefixes (while writing one).
const only = process.env.BERTH_VERIFY_ONLY?.split(',')
  .map((x) => x.trim())
  .filter(Boolean);
const lessons = loadLessons(dir).lessons.filter((l) => !only || only.some((p) => l.id.startsWith(p)));
/** Unset, 1 or first: every lesson; 0: none; else the lessons whose ids start with the listed prefixes. */
function lessonsIn(value: string | undefined) {
  if (value === undefined || value === '1' || value === 'first') return new Set(lessons.map((l) => l.id));
  const prefixes =
    value === '0'
      ? []
      : value
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
  return new Set(lessons.filter((l) => prefixes.some((p) => l.id.startsWith(p))).map((l) => l.id));
}
// BERTH_VERIFY_FAKES=0 leaves the fakes out (to time the lessons alone); a list tries only those lessons' (all of
// them: what a lesson's author runs); `first` tries the first fake of every check of every lesson (npm test: each
// check is shown to refuse a shortcut on every run, for two fifths of the time every fake takes: 654 s of 1616 s).
const withFakes = lessonsIn(process.env.BERTH_VERIFY_FAKES);
const firstFakeOnly = process.env.BERTH_VERIFY_FAKES === 'first';
/** The fakes tried on a lesson: none, every one, or one of each check. */
function fakesOf(lesson: (typeof lessons)[number]) {
  if (!withFakes.has(lesson.id)) return new Map<string, Fake[]>();
  const all = loadFakes(dir, lesson).byCheck;
  // The first that any engine lets a learner take: a rootful-only one (lesson 03's `--pid host`) would be skipped on
  // the rootless provider, leaving its check untried there (the Incus run tries all of 03's).
  const first = (fakes: Fake[]) => [fakes.find((f) => !f.engine) ?? fakes[0]];
  return firstFakeOnly ? new Map([...all].map(([check, fakes]) => [check, first(fakes)])) : all;
}
const reports: LessonReport[] = [];
let s: TestServer;
// Two lessons at a time: each holds a sandbox (or several nodes) on a two-core machine
// (BERTH_VERIFY_SLOTS changes it, for timing runs).
let slots = Number(process.env.BERTH_VERIFY_SLOTS ?? 2);
const waiting: (() => void)[] = [];
async function slot<T>(f: () => Promise<T>): Promise<T> {
  while (slots === 0) await new Promise<void>((r) => waiting.push(r));
  slots--;
  try {
    return await f();
  } finally {
    slots++;
    waiting.shift()?.();
  }
}

/** The verifier's commands, sent through the server's exec route as a learner's page sends them. */
const execIn =
  (c: Created): Exec =>
  async (node, script, timeoutMs) => {
    const r = await s.api(`/api/sessions/${c.id}/exec`, {
      method: 'POST',
      token: c.token,
      json: { cmd: script, node, timeoutMs: Math.min(timeoutMs, 600_000) },
    });
    if (r.status === 408) return { exitCode: 124, stdout: '', stderr: 'timed out' };
    if (r.status !== 200) throw new Error(`exec failed: ${r.status} ${await r.text()}`);
    return (await r.json()) as { exitCode: number; stdout: string; stderr: string };
  };

test.before(async () => {
  s = await startServer({ BERTH_LESSONS_DIR: dir });
});
test.after.always(async () => {
  await s?.stop();
  mkdirSync(join(import.meta.dirname, '..', 'artifacts'), { recursive: true });
  const suffix = process.env.BERTH_PROVIDER === 'incus' ? '-incus' : '';
  writeFileSync(join(import.meta.dirname, '..', 'artifacts', `lesson-report${suffix}.md`), formatReport(reports) + '\n');
});

test('there are lessons to verify', (t) => {
  t.true(lessons.length > 0);
});

// The longest lessons start first (ava starts tests in the order they are declared, so they take the first
// slots): with lesson 14's swarm fakes last, the run would end with one slot working alone for minutes.
const weight = (l: (typeof lessons)[number]) => (withFakes.has(l.id) ? (firstFakeOnly ? 2 : 3) : 1) * l.steps.length * l.nodes;
for (const lesson of [...lessons].sort((a, b) => weight(b) - weight(a))) {
  test(`lesson ${lesson.id} verifies on a real sandbox`, (t) => {
    // A lesson with its fakes can take longer than AVA's 5-minute quiet period on a loaded machine; this
    // per-test limit (which also holds off the global one) still ends a lesson that hangs.
    t.timeout(30 * 60_000); // holds off AVA's quiet-period limit while the lesson waits for a slot
    return slot(async () => {
      t.timeout(30 * 60_000); // and restarts when the lesson starts, so waiting does not count
      const c = await createSession(s, { lesson: lesson.id, nodes: lesson.nodes });
      try {
        const report = await verifyLesson(lesson, dir, execIn(c), { fakes: fakesOf(lesson) });
        reports.push(report);
        t.log(formatReport([report]));
        for (const st of report.steps) t.true(st.ok, `${lesson.id} › ${st.step}: ${st.problem ?? ''}`);
      } finally {
        await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
      }
    });
  });
}

// Skip to a step, proved: the in-order run above types each step with the replay module, so the state at
// the start of its step N is what skipping to N builds (checks only look, which the verifier proves for every
// check it runs, and each fake's restore is compared with the state before it). This
// test takes the checks and fakes away: on a fresh sandbox the server's own replay route brings the lesson
// to the start of its last step, with nothing else run in between; the last step's commands then pass its
// checks. BERTH_VERIFY_REPLAY=0 leaves it out; a list of prefixes runs it for those lessons only.
const replayIds = lessonsIn(process.env.BERTH_VERIFY_REPLAY);
const replayLessons = lessons.filter((l) => replayIds.has(l.id));
for (const lesson of replayLessons) {
  const last = lesson.steps.at(-1)!;
  test(`lesson ${lesson.id}: skipping to its last step through the server, then doing it, passes`, (t) =>
    slot(async () => {
      const c = await createSession(s, { lesson: lesson.id, nodes: lesson.nodes });
      const exec = execIn(c);
      try {
        const t0 = performance.now();
        const started = await s.api(`/api/sessions/${c.id}/replay`, { method: 'POST', token: c.token, json: { lesson: lesson.id, step: last.id } });
        t.is(started.status, 202, await started.clone().text());
        let v: { state: string; failedAt?: string; problem?: string; ms?: number; steps: { id: string; ms?: number }[] };
        do {
          await new Promise((ok) => setTimeout(ok, 1000));
          v = (await (await s.api(`/api/sessions/${c.id}/replay`, { token: c.token })).json()) as typeof v;
        } while (v.state === 'running');
        t.is(v.state, 'done', `${lesson.id}: replay stopped at ${v.failedAt}: ${v.problem}`);
        t.log(
          `${lesson.id}: replayed ${v.steps.length} steps in ${((v.ms ?? 0) / 1000).toFixed(1)} s (${v.steps.map((x) => `${x.id} ${((x.ms ?? 0) / 1000).toFixed(1)}`).join(', ')})`,
        );
        const done = await runActions(actionsFor(lesson, last, dir), exec, 300_000);
        t.is(done.problem, undefined, `${lesson.id} › ${last.id} after the replay`);
        for (const check of last.checks) {
          let passed = false;
          // The same moment a learner gives a service before clicking Check, as in the in-order run.
          for (let i = 0; i < 10 && !passed; i++) {
            passed = (await exec(check.node, check.script, 30_000)).exitCode === 0;
            if (!passed) await new Promise((ok) => setTimeout(ok, 1000));
          }
          t.true(passed, `${lesson.id} › ${last.id} › ${check.id} fails after skipping to the step and doing it`);
        }
        t.log(`${lesson.id}: skip to ${last.id} + do it: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } finally {
        await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
      }
    }));
}

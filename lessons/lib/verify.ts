// The lesson verifier's logic: runs a lesson's steps in order as a learner would and asserts that every
// check fails before its step and passes after it, that every command of the step succeeds (or fails
// where the lesson marks it `# fails`), and that every fake of a check, tried on the state just before
// the step, fails it. Independent of HTTP: it is given an exec function.
// The actions of a step come from the replay module, so the state at the start of step N here is exactly
// what "skip to step N" builds.
import type { Fake } from './fakes.ts';
import { loadFakes } from './load.ts';
import { actionsFor, lastLines, runActions, runBlock, type Exec } from './replay.ts';
import { explainFailure, strictScript } from './commands.ts';
import { changedBy, fakeRound, parseRound, readOnlyCheck, RESTORE, SNAPSHOT } from './sandbox-state.ts';
import type { Lesson, Step } from './schema.ts';

export { actionsFor, type Exec } from './replay.ts';
export type FakeResult = { title: string; line: number; check: 'fail' | 'pass' | 'broken' | 'skipped'; problem?: string };
export type CheckResult = { id: string; before: 'fail' | 'pass'; after: 'fail' | 'pass' | 'skipped'; ms: number; fakes: FakeResult[] };
export type StepReport = { step: string; checks: CheckResult[]; ok: boolean; ms: number; fakesMs: number; problem?: string };
export type LessonReport = { lesson: string; steps: StepReport[]; ok: boolean; ms: number };
export type VerifyOptions = { timeoutMs?: number; settleTries?: number; fakes?: Map<string, Fake[]>; skipFakes?: boolean };

/** A fake, its check, its undo and the restore in one exec (one-node lessons). */
async function oneRound(exec: Exec, check: string, f: Fake): Promise<FakeResult> {
  const res: FakeResult = { title: f.title, line: f.line, check: 'broken' };
  const r = await exec(f.node, fakeRound(strictScript(f.script), check, f.undo ? strictScript(f.undo) : ''), 300_000);
  const p = parseRound(r.stdout);
  if (!p) return { ...res, problem: `the fake's round did not finish (exit ${r.exitCode}): ${lastLines(r)}` };
  const problems: string[] = [];
  const why = (script: string, out: string, code: number) => `${explainFailure(script, out) ?? `exited ${code}`}: ${out.split('\n').slice(-3).join(' | ')}`;
  if (p.fakeExit !== 0) problems.push(`the fake itself failed (${why(f.script, p.fake, p.fakeExit)})`);
  else res.check = p.checkExit === 0 ? 'pass' : 'fail';
  if (p.undoExit !== 0) problems.push(`its undo failed (${why(f.undo, p.undo, p.undoExit)})`);
  if (p.left) problems.push(`left state behind on ${f.node}: ${p.left.split('\n').slice(0, 4).join(' / ')}`);
  return problems.length ? { ...res, problem: problems.join('; ') } : res;
}

/** Tries each fake of the step's checks on the state before the step, putting that state back after each. */
async function tryFakes(lesson: Lesson, step: Step, exec: Exec, fakes: Map<string, Fake[]>, results: Map<string, FakeResult[]>) {
  const all = step.checks.flatMap((c) => (fakes.get(c.id) ?? []).map((f) => ({ c, f })));
  if (!all.length) return;
  const nodes = Array.from({ length: lesson.nodes }, (_, i) => `node${i + 1}`);
  for (const n of nodes) {
    const r = await exec(n, SNAPSHOT, 60_000);
    if (r.exitCode !== 0) throw new Error(`snapshot of ${n} failed: ${lastLines(r)}`);
  }
  // A shortcut only a rootful engine allows (`--pid host`) cannot even be taken on a rootless one: it is
  // tried where the engine is rootful (the Incus nodes) and reported as skipped elsewhere.
  const rootless =
    all.some(({ f }) => f.engine === 'rootful') && /rootless/.test((await exec('node1', "docker info -f '{{json .SecurityOptions}}'", 60_000)).stdout);
  for (const { c, f } of all) {
    if (rootless && f.engine === 'rootful') {
      results.get(c.id)!.push({ title: f.title, line: f.line, check: 'skipped' });
      continue;
    }
    if (nodes.length === 1) {
      results.get(c.id)!.push(await oneRound(exec, c.script, f));
      continue;
    }
    const res: FakeResult = { title: f.title, line: f.line, check: 'broken' };
    const broke = await runBlock(exec, f.node, f.script, 180_000);
    if (broke) res.problem = `the fake itself failed (${broke})`;
    else res.check = (await exec(c.node, c.script, 30_000)).exitCode === 0 ? 'pass' : 'fail';
    if (f.undo) {
      const undone = await runBlock(exec, f.node, f.undo, 180_000);
      if (undone) res.problem = [res.problem, `its undo failed (${undone})`].filter(Boolean).join('; ');
    }
    for (const n of nodes) {
      const left = (await exec(n, RESTORE, 180_000)).stdout.trim();
      if (left) res.problem = [res.problem, `left state behind on ${n}: ${left.split('\n').slice(0, 4).join(' / ')}`].filter(Boolean).join('; ');
    }
    results.get(c.id)!.push(res);
  }
}

export async function verifyLesson(lesson: Lesson, lessonsDir: string, exec: Exec, opts: VerifyOptions = {}): Promise<LessonReport> {
  const { timeoutMs = 180_000, settleTries = 10, skipFakes = false } = opts;
  const fakes = opts.fakes ?? (skipFakes ? new Map<string, Fake[]>() : loadFakes(lessonsDir, lesson).byCheck);
  const t0 = performance.now();
  const steps: StepReport[] = [];
  for (const step of lesson.steps) {
    const s0 = performance.now();
    const checks: CheckResult[] = [];
    const problems: string[] = [];
    // Every run of a check is wrapped in two reads of its node's state: a check that changed the sandbox would
    // make this in-order run reach a state that skipping to a later step (no checks in between) does not.
    const look = async (c: (typeof step.checks)[number]) => {
      const r = await exec(c.node, readOnlyCheck(c.script), 60_000);
      const changed = changedBy(r.stdout);
      if (changed) problems.push(`${c.id}: the check changed the sandbox (a check must only look): ${changed}`);
      return r.exitCode === 0 ? 'pass' : 'fail';
    };
    for (const c of step.checks) {
      const c0 = performance.now();
      const before = await look(c);
      checks.push({ id: c.id, before, after: 'skipped', ms: performance.now() - c0, fakes: [] });
    }
    const f0 = performance.now();
    const fakeResults = new Map(checks.map((c) => [c.id, c.fakes]));
    await tryFakes(lesson, step, exec, fakes, fakeResults);
    const fakesMs = performance.now() - f0;
    const failed = (await runActions(actionsFor(lesson, step, lessonsDir), exec, timeoutMs)).problem;
    if (failed) problems.push(failed);
    for (const [i, c] of step.checks.entries()) {
      const c0 = performance.now();
      // A learner clicks Check a moment after the commands; services started in the step get that moment too.
      for (let attempt = 0; attempt < settleTries; attempt++) {
        checks[i].after = await look(c);
        if (checks[i].after === 'pass' || failed) break;
        await new Promise((ok) => setTimeout(ok, 1000));
      }
      checks[i].ms += performance.now() - c0;
    }
    if (!failed) for (const c of checks) if (c.before !== 'fail' || c.after !== 'pass') problems.push(`${c.id}: before ${c.before}, after ${c.after}`);
    for (const c of checks)
      for (const f of c.fakes) {
        if (f.check === 'pass') problems.push(`${c.id}: fake "${f.title}" (fakes/${c.id}.sh:${f.line}) passes the check`);
        if (f.problem) problems.push(`${c.id}: fake "${f.title}" (fakes/${c.id}.sh:${f.line}): ${f.problem}`);
      }
    const ok = !problems.length;
    steps.push({ step: step.id, checks, ok, ms: performance.now() - s0, fakesMs, ...(ok ? {} : { problem: problems.join('; ') }) });
  }
  return { lesson: lesson.id, steps, ok: steps.every((s) => s.ok), ms: performance.now() - t0 };
}

export function formatReport(reports: LessonReport[]): string {
  const rows = ['| lesson | step | check | before | after | fakes failing | time |', '|---|---|---|---|---|---|---|'];
  const fakeCell = (c: CheckResult) => {
    if (!c.fakes.length) return '–';
    const tried = c.fakes.filter((f) => f.check !== 'skipped');
    const skipped = c.fakes.length - tried.length;
    return `${tried.filter((f) => f.check === 'fail' && !f.problem).length}/${tried.length}${skipped ? ` (${skipped} skipped: rootless engine)` : ''}`;
  };
  for (const r of reports) {
    for (const s of r.steps) {
      if (!s.checks.length) rows.push(`| ${r.lesson} | ${s.step} | (none) | | | | ${(s.ms / 1000).toFixed(1)} s |`);
      for (const c of s.checks) rows.push(`| ${r.lesson} | ${s.step} | ${c.id} | ${c.before} | ${c.after} | ${fakeCell(c)} | ${(c.ms / 1000).toFixed(1)} s |`);
      if (s.fakesMs > 0) rows.push(`| ${r.lesson} | ${s.step} | (fakes) | | | | ${(s.fakesMs / 1000).toFixed(1)} s |`);
      if (s.problem) rows.push(`| ${r.lesson} | ${s.step} | **problem** | ${s.problem.replace(/\|/g, '/')} | | | |`);
    }
    rows.push(`| ${r.lesson} | **total** | | | | | ${(r.ms / 1000).toFixed(1)} s |`);
  }
  return rows.join('\n');
}

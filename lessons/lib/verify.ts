// The lesson verifier's logic: runs a lesson's steps in order as a learner would and asserts that every
// check fails before its step and passes after it. Independent of HTTP: it is given an exec function.
// The actions of a step come from the replay module, so the state at the start of step N here is exactly
// what "skip to step N" builds: this in-order run proves every step can be skipped to and then done.
import { actionsFor, runActions, type Exec } from './replay.ts';
import type { Lesson } from './schema.ts';

export { actionsFor, type Exec };
export type CheckResult = { id: string; before: 'fail' | 'pass'; after: 'fail' | 'pass' | 'skipped'; ms: number };
export type StepReport = { step: string; checks: CheckResult[]; ok: boolean; ms: number; problem?: string };
export type LessonReport = { lesson: string; steps: StepReport[]; ok: boolean; ms: number };

export async function verifyLesson(lesson: Lesson, lessonsDir: string, exec: Exec, { timeoutMs = 180_000, settleTries = 10 } = {}): Promise<LessonReport> {
  const t0 = performance.now();
  const steps: StepReport[] = [];
  for (const step of lesson.steps) {
    const s0 = performance.now();
    const checks: CheckResult[] = [];
    let problem: string | undefined;
    for (const c of step.checks) {
      const c0 = performance.now();
      const r = await exec(c.node, c.script, 30_000);
      checks.push({ id: c.id, before: r.exitCode === 0 ? 'pass' : 'fail', after: 'skipped', ms: 0 });
      checks.at(-1)!.ms = performance.now() - c0;
    }
    ({ problem } = await runActions(actionsFor(lesson, step, lessonsDir), exec, timeoutMs));
    for (const [i, c] of step.checks.entries()) {
      const c0 = performance.now();
      // A learner clicks Check a moment after the commands; services started in the step get that moment too.
      for (let attempt = 0; attempt < settleTries; attempt++) {
        const r = await exec(c.node, c.script, 30_000);
        checks[i].after = r.exitCode === 0 ? 'pass' : 'fail';
        if (checks[i].after === 'pass' || problem) break;
        await new Promise((ok) => setTimeout(ok, 1000));
      }
      checks[i].ms += performance.now() - c0;
    }
    const ok = !problem && checks.every((c) => c.before === 'fail' && c.after === 'pass');
    if (!problem && !ok) problem = checks.filter((c) => c.before !== 'fail' || c.after !== 'pass').map((c) => `${c.id}: before ${c.before}, after ${c.after}`).join('; ');
    steps.push({ step: step.id, checks, ok, ms: performance.now() - s0, ...(problem ? { problem } : {}) });
  }
  return { lesson: lesson.id, steps, ok: steps.every((s) => s.ok), ms: performance.now() - t0 };
}

export function formatReport(reports: LessonReport[]): string {
  const rows = ['| lesson | step | check | before | after | time |', '|---|---|---|---|---|---|'];
  for (const r of reports) {
    for (const s of r.steps) {
      if (!s.checks.length) rows.push(`| ${r.lesson} | ${s.step} | (none) | | | ${(s.ms / 1000).toFixed(1)} s |`);
      for (const c of s.checks) rows.push(`| ${r.lesson} | ${s.step} | ${c.id} | ${c.before} | ${c.after} | ${(c.ms / 1000).toFixed(1)} s |`);
      if (s.problem) rows.push(`| ${r.lesson} | ${s.step} | **problem** | ${s.problem.replace(/\|/g, '/')} | | |`);
    }
  }
  return rows.join('\n');
}

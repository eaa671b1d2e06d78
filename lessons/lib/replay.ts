// Replaying a lesson: the reference commands of each step (its run blocks, verify blocks, or an exercise's
// solution), and running them on a sandbox. One module, so that the server's "skip to this step" and the
// lesson verifier type exactly the same thing: a step the verifier proves is a step a learner can skip to.
import { readFileSync } from 'node:fs';
import { explainFailure, splitCommands, strictScript } from './commands.ts';
import { solutionPath } from './paths.ts';
import type { Lesson, Step } from './schema.ts';

export type Exec = (node: string, script: string, timeoutMs: number) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
export type Action = { node: string; script: string };
export type PlannedStep = { id: string; title: string; actions: Action[] };
export type ReferenceCommand = { node: string; text: string; interactive: boolean };

/** What a step's reference replay types: its non-interactive commands and verify blocks, or the solution. */
export function actionsFor(lesson: Lesson, step: Step, lessonsDir: string): Action[] {
  if (step.exercise) return [{ node: 'node1', script: readFileSync(solutionPath(lessonsDir, lesson.id, step.id), 'utf8') }];
  const plain = step.commands.filter((c) => !c.interactive).map((c) => ({ node: c.node, script: c.text }));
  return [...plain, ...step.verify];
}

/** "Show me": what a person would type for the step, interactive commands included (a human is there). */
export function referenceFor(lesson: Lesson, step: Step, lessonsDir: string): ReferenceCommand[] {
  if (step.exercise) {
    const text = readFileSync(solutionPath(lessonsDir, lesson.id, step.id), 'utf8').trimEnd();
    return [{ node: 'node1', text, interactive: false }];
  }
  return step.commands.map((c) => ({ node: c.node, text: c.text.trimEnd(), interactive: c.interactive }));
}

/** The steps before `stepId`, in order, with what replays each. Throws a RangeError for an unknown step. */
export function replayPlan(lesson: Lesson, stepId: string, lessonsDir: string): PlannedStep[] {
  const at = lesson.steps.findIndex((s) => s.id === stepId);
  if (at < 0) throw new RangeError(`lesson ${lesson.id} has no step ${stepId}`);
  return lesson.steps.slice(0, at).map((s) => ({ id: s.id, title: s.title, actions: actionsFor(lesson, s, lessonsDir) }));
}

export const lastLines = (r: { stdout: string; stderr: string }) => (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');

/**
 * Runs one block command by command, as a learner types it, and says which command failed (or succeeded
 * although marked `# fails`); undefined when all went as marked. A block of one plain command is sent as
 * it is: its exit status is the command's.
 */
export async function runBlock(exec: Exec, node: string, script: string, timeoutMs: number): Promise<string | undefined> {
  const cmds = splitCommands(script);
  const plain = cmds.length === 1 && !cmds[0].expectFail;
  const r = await exec(node, plain ? script : strictScript(script), timeoutMs);
  if (r.exitCode === 0) return undefined;
  const which = plain ? `line ${cmds[0].line} \`${cmds[0].text.split('\n')[0].slice(0, 100)}\` exited ${r.exitCode}` : explainFailure(script, r.stderr);
  return `${which ?? `exited ${r.exitCode}`}: ${lastLines(r)}`;
}

/** Runs one step's actions in order; the first command that fails stops the step and is described. */
export async function runActions(actions: Action[], exec: Exec, timeoutMs: number): Promise<{ problem?: string }> {
  for (const a of actions) {
    const failed = await runBlock(exec, a.node, a.script, timeoutMs);
    if (failed) return { problem: `commands: ${failed}` };
  }
  return {};
}

export type ReplayEvent =
  | { type: 'step-start'; index: number; step: string }
  | { type: 'step-done'; index: number; step: string; ms: number }
  | { type: 'step-failed'; index: number; step: string; ms: number; problem: string };

/** Replays the planned steps one after another; stops at the first step that fails. */
export async function replay(
  plan: PlannedStep[],
  exec: Exec,
  { timeoutMs = 180_000, onEvent = (_e: ReplayEvent) => {} } = {},
): Promise<{ ok: boolean; failedAt?: string; problem?: string; ms: number }> {
  const t0 = performance.now();
  for (const [index, s] of plan.entries()) {
    const s0 = performance.now();
    onEvent({ type: 'step-start', index, step: s.id });
    const { problem } = await runActions(s.actions, exec, timeoutMs);
    const ms = performance.now() - s0;
    if (problem) {
      onEvent({ type: 'step-failed', index, step: s.id, ms, problem });
      return { ok: false, failedAt: s.id, problem, ms: performance.now() - t0 };
    }
    onEvent({ type: 'step-done', index, step: s.id, ms });
  }
  return { ok: true, ms: performance.now() - t0 };
}

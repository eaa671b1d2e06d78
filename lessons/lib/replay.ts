// What a step's reference commands are, and running them as a learner would: block by block, command by
// command, stopping at the first one that fails (or that succeeds although marked `# fails`). The
// verifier uses it for every step; replaying a sandbox to a step (skip-to-step) can use it too.
import { readFileSync } from 'node:fs';
import { explainFailure, strictScript } from './commands.ts';
import { solutionPath } from './load.ts';
import type { Lesson, Step } from './schema.ts';

export type Exec = (node: string, script: string, timeoutMs: number) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
export type Action = { node: string; script: string };

/** What the verifier types for a step: its non-interactive commands, its verify blocks, or the solution. */
export function actionsFor(lesson: Lesson, step: Step, lessonsDir: string): Action[] {
  if (step.exercise) return [{ node: 'node1', script: readFileSync(solutionPath(lessonsDir, lesson.id, step.id), 'utf8') }];
  const plain = step.commands.filter((c) => !c.interactive).map((c) => ({ node: c.node, script: c.text }));
  return [...plain, ...step.verify];
}

export const lastLines = (r: { stdout: string; stderr: string }) => (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');

/** Runs one block command by command; says which command failed, or undefined when all went as marked. */
export async function runBlock(exec: Exec, node: string, script: string, timeoutMs: number): Promise<string | undefined> {
  const r = await exec(node, strictScript(script), timeoutMs);
  if (r.exitCode === 0) return undefined;
  return `${explainFailure(script, r.stderr) ?? `exited ${r.exitCode}`}: ${lastLines(r)}`;
}

/** Runs a step's actions in order; stops at the first failing command and says which. */
export async function runActions(actions: Action[], exec: Exec, timeoutMs: number): Promise<{ problem?: string }> {
  for (const a of actions) {
    const failed = await runBlock(exec, a.node, a.script, timeoutMs);
    if (failed) return { problem: `commands: ${failed}` };
  }
  return {};
}

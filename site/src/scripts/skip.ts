// "Skip to this step" and "Show me", per step. Skipping starts a fresh sandbox and has the server replay
// the reference commands of every earlier step (POST /replay, then polling its progress); Show me types
// the step's own reference commands into the terminal, as clicking them would.
import { ApiFailure } from './api.ts';
import { call } from './client.ts';
import { confirmDialog } from './dialog.ts';
import type { LessonShape } from './progress.ts';
import type { Workbench } from './workbench.ts';

const POLL_MS = 1000;

export async function skipTo(wb: Workbench, shape: LessonShape, stepId: string, status: HTMLElement) {
  const index = shape.steps.findIndex((s) => s.id === stepId);
  const before = shape.steps.slice(0, index);
  if (
    !(await confirmDialog({
      title: `Skip to step ${index + 1}?`,
      text: before.length
        ? `A fresh sandbox replaces the current one (everything in it is removed), then the commands of step${before.length > 1 ? `s 1–${index}` : ' 1'} run in it, so it is ready for "${shape.steps[index].title}". Your progress in the lesson is kept.`
        : 'A fresh sandbox replaces the current one (everything in it is removed). Your progress in the lesson is kept.',
      ok: 'Skip to this step',
    }))
  )
    return;
  status.textContent = 'Starting a fresh sandbox…';
  await wb.resetSandbox(false);
  const s = wb.session;
  if (!s || wb.state !== 'ready') {
    status.textContent = 'The fresh sandbox did not start; see the workbench, then try again.';
    return;
  }
  if (!before.length) {
    status.textContent = 'Fresh sandbox ready: this is the first step.';
    return;
  }
  try {
    let v = await call('POST /api/sessions/:id/replay', { params: { id: s.id }, token: s.token, body: { lesson: shape.id, step: stepId } });
    while (v.state === 'running') {
      const at = v.steps.findIndex((x) => x.state === 'running');
      status.textContent = at >= 0 ? `Replaying step ${at + 1} of ${before.length}: ${v.steps[at].title}…` : 'Replaying…';
      await new Promise((ok) => setTimeout(ok, POLL_MS));
      v = await call('GET /api/sessions/:id/replay', { params: { id: s.id }, token: s.token });
    }
    if (v.state === 'done') {
      status.textContent = `Ready: steps 1–${index} replayed in ${Math.round((v.ms ?? 0) / 1000)} s. Your sandbox is where this step starts.`;
    } else {
      const at = v.steps.findIndex((x) => x.id === v.failedAt);
      status.textContent = `Replaying stopped at step ${at + 1} (${v.steps[at]?.title ?? v.failedAt}): ${v.problem ?? 'a command failed'}.`;
    }
  } catch (err) {
    status.textContent = `Could not replay: ${err instanceof ApiFailure ? err.message : (err as Error).message}`;
  }
}

export async function showMe(wb: Workbench, shape: LessonShape, stepId: string, status: HTMLElement) {
  const index = shape.steps.findIndex((s) => s.id === stepId);
  if (
    !(await confirmDialog({
      title: `Show me step ${index + 1}?`,
      text: 'The reference commands for this step are typed into your terminal and run there. Trying it yourself first teaches more.',
      ok: 'Show me',
    }))
  )
    return;
  if (!(await wb.ensureSession()) || !wb.session) {
    status.textContent = 'Start the sandbox first.';
    return;
  }
  const s = wb.session;
  try {
    const ref = await call('GET /api/sessions/:id/lessons/:lesson/steps/:step/reference', {
      params: { id: s.id, lesson: shape.id, step: stepId },
      token: s.token,
    });
    for (const c of ref.commands) {
      await wb.runCommand(c.node, c.text, c.interactive);
      // A command that opens an interactive shell takes the keyboard: what follows would be typed into it.
      if (c.interactive) {
        status.textContent = 'Typed. This command is interactive: carry on in the terminal.';
        return;
      }
    }
    status.textContent = ref.commands.length ? 'Typed into your terminal.' : 'This step has no commands to type.';
  } catch (err) {
    status.textContent = `Could not fetch the commands: ${err instanceof ApiFailure ? err.message : (err as Error).message}`;
  }
}

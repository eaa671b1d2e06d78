// The instructions column: clickable commands, checks, self-check questions and step progress.
// Progress lives in localStorage (progress.ts) and is redrawn from it after every change.
import { ApiFailure } from './api.ts';
import { confirmDialog } from './dialog.ts';
import { showMe, skipTo } from './skip.ts';
import { clearProgress, loadProgress, saveProgress, stepDone, summarize, type LessonShape, type LessonProgress } from './progress.ts';
import type { Workbench } from './workbench.ts';

export function startInstructions(root: HTMLElement, shape: LessonShape, wb: Workbench) {
  let p: LessonProgress = loadProgress(shape.id);
  const save = () => { saveProgress(shape.id, p); render(); };

  function render() {
    for (const step of shape.steps) {
      const el = root.querySelector<HTMLElement>(`[data-step="${step.id}"]`);
      if (!el) continue;
      const done = stepDone(step, p);
      const byChecks = step.checks.length > 0 && step.checks.every((c) => p.checks[c]);
      el.dataset.done = String(done);
      const box = el.querySelector<HTMLInputElement>('[data-step-done]')!;
      box.checked = done;
      box.disabled = byChecks;
      const passed = step.checks.filter((c) => p.checks[c]).length;
      el.querySelector('[data-step-status]')!.textContent = done ? 'Done ✓'
        : step.checks.length ? `${passed} of ${step.checks.length} check${step.checks.length > 1 ? 's' : ''} passed` : '';
    }
    const s = summarize(shape, p);
    root.querySelector<HTMLProgressElement>('[data-progress-bar]')!.value = s.stepsDone;
    root.querySelector('[data-progress-text]')!.textContent = `${s.stepsDone} of ${s.steps} steps done`
      + (s.checks ? `, ${s.checksPassed} of ${s.checks} checks passed` : '') + (s.quizzes ? `, ${s.quizzesRight} of ${s.quizzes} questions right` : '');
  }

  // What a reload brings back: passed checks and answered questions.
  function restore() {
    for (const box of root.querySelectorAll<HTMLElement>('.berth-check')) {
      const ok = p.checks[box.dataset.checkId!];
      box.dataset.state = ok ? 'pass' : '';
      box.querySelector('.check-result')!.textContent = ok ? 'Passed earlier.' : '';
    }
    for (const fs of root.querySelectorAll<HTMLFieldSetElement>('.berth-quiz')) {
      const a = p.quizzes[fs.dataset.quizId!];
      const inputs = [...fs.querySelectorAll<HTMLInputElement>('input')];
      inputs.forEach((i, n) => { i.checked = !!a?.answer.includes(n); });
      if (a) showAnswer(fs, a.answer); else resetQuiz(fs);
    }
  }

  async function check(box: HTMLElement, button: HTMLButtonElement) {
    const id = box.dataset.checkId!;
    const result = box.querySelector<HTMLElement>('.check-result')!;
    button.disabled = true;
    box.dataset.state = 'running';
    result.textContent = 'Checking your sandbox…';
    try {
      const r = await wb.check(id);
      box.dataset.state = r.passed ? 'pass' : 'fail';
      // A check without its own pass message answers just "Passed.": say it once.
      const label = r.passed ? 'Passed.' : 'Not yet.';
      result.replaceChildren(r.message && r.message !== label ? `${label} ${r.message}` : label);
      if (!r.passed && r.detail) {
        const pre = document.createElement('pre');
        pre.textContent = r.detail;
        pre.setAttribute('aria-label', 'Output of the check');
        result.append(pre);
      }
      if (r.passed) p.checks[id] = true; else delete p.checks[id];
      save();
      if (r.passed) wb.reportProgress({ checksPassed: Object.keys(p.checks).filter((c) => p.checks[c]) });
    } catch (err) {
      box.dataset.state = 'error';
      result.textContent = checkError(err);
    } finally {
      button.disabled = false;
    }
  }

  function answer(fs: HTMLFieldSetElement) {
    const chosen = [...fs.querySelectorAll<HTMLInputElement>('input')].flatMap((i, n) => (i.checked ? [n] : []));
    const verdict = fs.querySelector<HTMLElement>('.quiz-verdict')!;
    if (!chosen.length) { verdict.textContent = 'Choose an answer first.'; return; }
    const correct = showAnswer(fs, chosen);
    const id = fs.dataset.quizId!;
    p.quizzes[id] = { answer: chosen, correct };
    save();
    wb.reportProgress({ quiz: [{ id, answer: chosen.map(String), correct }] });
  }

  /** Shows the explanation of every chosen option and says whether the choice is right. */
  function showAnswer(fs: HTMLFieldSetElement, chosen: number[]): boolean {
    const explains = [...fs.querySelectorAll<HTMLElement>('.berth-quiz-explain')];
    const right = explains.filter((e) => e.dataset.correct === 'true').map((e) => Number(e.dataset.option));
    const correct = right.length === chosen.length && right.every((r) => chosen.includes(r));
    for (const e of explains) e.hidden = !chosen.includes(Number(e.dataset.option));
    fs.dataset.state = correct ? 'right' : 'wrong';
    fs.querySelector('.quiz-verdict')!.textContent = correct ? 'Right!'
      : fs.dataset.multiple === 'true' ? 'Not quite: read the explanations and try another combination.' : 'Not quite: read the explanation and try again.';
    return correct;
  }

  function resetQuiz(fs: HTMLFieldSetElement) {
    for (const e of fs.querySelectorAll<HTMLElement>('.berth-quiz-explain')) e.hidden = true;
    fs.dataset.state = '';
    fs.querySelector('.quiz-verdict')!.textContent = '';
  }

  async function resetLesson() {
    if (!(await confirmDialog({
      title: 'Reset this lesson?',
      text: 'Your progress in this lesson (steps, checks, answers) is cleared and a fresh sandbox replaces the current one.',
      ok: 'Reset lesson',
    }))) return;
    clearProgress(shape.id);
    p = loadProgress(shape.id);
    restore();
    render();
    await wb.resetSandbox(false);
  }

  root.addEventListener('click', (e) => {
    const target = e.target as HTMLElement;
    const action = target.closest<HTMLButtonElement>('[data-action]');
    const cmd = target.closest<HTMLElement>('.berth-cmd');
    if (cmd && (action?.dataset.action === 'run' || (!action && target.closest('pre') && !window.getSelection()?.toString()))) {
      const code = cmd.querySelector('code')!.textContent ?? '';
      cmd.dataset.sent = 'true';
      void wb.runCommand(cmd.dataset.node ?? 'node1', code, cmd.dataset.interactive === 'true');
      return;
    }
    switch (action?.dataset.action) {
      case 'copy': void copy(action, cmd?.querySelector('code')?.textContent ?? ''); break;
      case 'check': void check(action.closest<HTMLElement>('.berth-check')!, action); break;
      case 'answer': answer(action.closest<HTMLFieldSetElement>('.berth-quiz')!); break;
      case 'reset-lesson': void resetLesson(); break;
      case 'skip-to': case 'show-me': {
        const step = action.closest<HTMLElement>('[data-step]')!;
        const status = step.querySelector<HTMLElement>('[data-step-tools-status]')!;
        void (action.dataset.action === 'skip-to' ? skipTo : showMe)(wb, shape, step.dataset.step!, status);
        break;
      }
    }
  });
  root.addEventListener('change', (e) => {
    const box = (e.target as HTMLElement).closest<HTMLInputElement>('[data-step-done]');
    if (!box) return;
    const step = box.closest<HTMLElement>('[data-step]')!.dataset.step!;
    if (box.checked) p.steps[step] = true; else delete p.steps[step];
    save();
    if (box.checked) wb.reportProgress({ step });
  });
  // Another tab of the same lesson changed the progress.
  window.addEventListener('storage', (e) => {
    if (e.key === `berth.progress.${shape.id}`) { p = loadProgress(shape.id); restore(); render(); }
  });

  restore();
  render();
}

function checkError(err: unknown): string {
  if (!(err instanceof ApiFailure)) return `The check could not run: ${(err as Error).message}`;
  if (err.code === 'NO_SANDBOX') return err.message;
  if (err.unreachable) return 'The check could not run: the Berth server is not reachable. Try again once it is back.';
  if (err.sessionGone) return 'Your sandbox has ended. Start a new one in the workbench, redo the step, then check again.';
  if (err.code === 'EXEC_TIMEOUT') return 'The check took too long to answer. Wait for your last command to finish, then check again.';
  return `The check could not run: ${err.message}${err.requestId ? ` (request ${err.requestId})` : ''}. Try again.`;
}

async function copy(button: HTMLButtonElement, text: string) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
}

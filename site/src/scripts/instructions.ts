// The instructions column: clickable commands, checks, self-check questions and step progress.
// Progress lives in localStorage (progress.ts) and is redrawn from it after every change.
import { ApiFailure } from './api.ts';
import { call, type Reply } from './client.ts';
import { confirmDialog } from './dialog.ts';
import { showMe, skipTo } from './skip.ts';
import { clearProgress, loadProgress, saveProgress, stepDone, summarize, type LessonShape, type LessonProgress } from './progress.ts';
import type { Workbench } from './workbench.ts';

export function startInstructions(root: HTMLElement, shape: LessonShape, wb: Workbench) {
  let p: LessonProgress = loadProgress(shape.id);
  const save = () => {
    saveProgress(shape.id, p);
    render();
  };

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
      el.querySelector('[data-step-status]')!.textContent = done
        ? 'Done ✓'
        : step.checks.length
          ? `${passed} of ${step.checks.length} check${step.checks.length > 1 ? 's' : ''} passed`
          : '';
    }
    const s = summarize(shape, p);
    root.querySelector<HTMLProgressElement>('[data-progress-bar]')!.value = s.stepsDone;
    root.querySelector('[data-progress-text]')!.textContent =
      `${s.stepsDone} of ${s.steps} steps done` +
      (s.checks ? `, ${s.checksPassed} of ${s.checks} checks passed` : '') +
      (s.quizzes ? `, ${s.quizzesRight} of ${s.quizzes} questions right` : '');
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
      inputs.forEach((i, n) => {
        i.checked = !!a?.answer.includes(n);
      });
      if (a) void judge(fs, a.answer, false);
      else resetQuiz(fs);
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
      if (r.passed) p.checks[id] = true;
      else delete p.checks[id];
      save();
      if (r.passed) wb.reportProgress({ step: stepOf(box), checksPassed: Object.keys(p.checks).filter((c) => p.checks[c]) });
    } catch (err) {
      box.dataset.state = 'error';
      result.textContent = checkError(err);
    } finally {
      button.disabled = false;
    }
  }

  async function answer(fs: HTMLFieldSetElement) {
    const chosen = [...fs.querySelectorAll<HTMLInputElement>('input')].flatMap((i, n) => (i.checked ? [n] : []));
    const verdict = fs.querySelector<HTMLElement>('.quiz-verdict')!;
    if (!chosen.length) {
      verdict.textContent = fs.dataset.multiple === 'true' ? 'Choose at least one answer first.' : 'Choose an answer first.';
      return;
    }
    const v = await judge(fs, chosen, true);
    if (!v) return;
    const id = fs.dataset.quizId!;
    p.quizzes[id] = { answer: chosen, correct: v.correct };
    save();
    // The instructor's score is the server's own verdict; the page sends only the choice.
    wb.reportProgress({ step: stepOf(fs), quiz: [{ id, answer: chosen.map(String) }] });
  }

  type Verdict = Reply<'POST /api/lessons/:lesson/quizzes/:quiz/answer'>;

  /** Asks the server whether the choice is right, then shows one verdict that agrees with every explanation. */
  async function judge(fs: HTMLFieldSetElement, chosen: number[], asked: boolean): Promise<Verdict | null> {
    const verdict = fs.querySelector<HTMLElement>('.quiz-verdict')!;
    const button = fs.querySelector<HTMLButtonElement>('[data-action=answer]')!;
    if (asked) {
      verdict.textContent = 'Checking your answer…';
      button.disabled = true;
    }
    let v: Verdict;
    try {
      v = await call('POST /api/lessons/:lesson/quizzes/:quiz/answer', { params: { lesson: shape.id, quiz: fs.dataset.quizId! }, body: { answer: chosen } });
    } catch (err) {
      if (asked)
        verdict.textContent =
          err instanceof ApiFailure && err.unreachable
            ? 'Your answer could not be checked: the Berth server is not reachable. Try again once it is back.'
            : `Your answer could not be checked: ${(err as Error).message}`;
      return null;
    } finally {
      button.disabled = false;
    }
    const box = fs.querySelector<HTMLElement>('[data-explanations]')!;
    box.replaceChildren(
      ...v.explanations.map((e) => {
        const d = document.createElement('div');
        d.className = 'berth-quiz-explain';
        d.dataset.correct = String(e.correct);
        const mark = document.createElement('strong');
        mark.textContent = e.correct ? 'Right choice: ' : 'Not this one: ';
        const text = document.createElement('span');
        text.innerHTML = e.html; // the lesson's own markdown, rendered by the lesson module on the server
        d.append(mark, text);
        return d;
      }),
    );
    fs.dataset.state = v.correct ? 'right' : 'wrong';
    const missing = v.rightCount - v.chosenRight;
    verdict.textContent = v.correct
      ? 'Right!'
      : !v.multiple
        ? 'Not quite: read the explanation and try again.'
        : v.chosenWrong === 0
          ? `Partly right: ${v.chosenRight === 1 ? 'your choice is' : 'your choices are'} right, but ${missing === 1 ? 'one more answer is' : `${missing} more answers are`} right too. Choose all that apply.`
          : v.chosenRight > 0
            ? `Not quite: ${v.chosenRight} of your choices ${v.chosenRight === 1 ? 'is' : 'are'} right and ${v.chosenWrong} ${v.chosenWrong === 1 ? 'is' : 'are'} not. Try another combination.`
            : 'Not quite: none of your choices is right. Read the explanations and try another combination.';
    return v;
  }

  function resetQuiz(fs: HTMLFieldSetElement) {
    fs.querySelector('[data-explanations]')?.replaceChildren();
    fs.dataset.state = '';
    fs.querySelector('.quiz-verdict')!.textContent = '';
  }

  async function resetLesson() {
    if (
      !(await confirmDialog({
        title: 'Reset this lesson?',
        text: 'Your progress in this lesson (steps, checks, answers) is cleared and a fresh sandbox replaces the current one.',
        ok: 'Reset lesson',
      }))
    )
      return;
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
      wb.reportProgress({ step: stepOf(cmd) });
      void wb.runCommand(cmd.dataset.node ?? 'node1', code, cmd.dataset.interactive === 'true');
      return;
    }
    switch (action?.dataset.action) {
      case 'copy':
        void copy(action, cmd?.querySelector('code')?.textContent ?? '');
        break;
      case 'check':
        void check(action.closest<HTMLElement>('.berth-check')!, action);
        break;
      case 'answer':
        void answer(action.closest<HTMLFieldSetElement>('.berth-quiz')!);
        break;
      case 'reset-lesson':
        void resetLesson();
        break;
      case 'skip-to':
      case 'show-me': {
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
    if (box.checked) p.steps[step] = true;
    else delete p.steps[step];
    save();
    if (box.checked) wb.reportProgress({ step });
  });
  // Another tab of the same lesson changed the progress.
  window.addEventListener('storage', (e) => {
    if (e.key === `berth.progress.${shape.id}`) {
      p = loadProgress(shape.id);
      restore();
      render();
    }
  });

  restore();
  render();
}

/** The step an element of the instructions belongs to: the dashboard follows the learner through the steps. */
function stepOf(el: Element): string | undefined {
  return el.closest<HTMLElement>('[data-step]')?.dataset.step;
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
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 1500);
}

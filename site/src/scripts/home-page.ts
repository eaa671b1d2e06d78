// The learning path's progress, read from this browser's storage.
import { loadProgress, summarize, type LessonShape } from './progress.ts';

export function startHomePage() {
  const items = [...document.querySelectorAll<HTMLElement>('.path-item')];
  let doneCount = 0;
  let resume: { shape: LessonShape; step?: string; at: string } | undefined;
  for (const item of items) {
    const shape = JSON.parse(item.dataset.shape ?? '{}') as LessonShape;
    const p = loadProgress(shape.id);
    const s = summarize(shape, p);
    item.querySelector<HTMLProgressElement>('[data-bar]')!.value = s.stepsDone;
    const text = item.querySelector<HTMLElement>('[data-text]')!;
    if (s.done) {
      item.dataset.state = 'done';
      text.textContent = 'Done';
      doneCount++;
    } else if (s.started) {
      item.dataset.state = 'started';
      text.textContent = `${s.stepsDone} of ${s.steps} steps`;
      if (!resume || p.updatedAt > resume.at) resume = { shape, step: s.firstOpen?.id, at: p.updatedAt };
    }
  }
  const summary = document.querySelector('[data-path-progress]');
  if (summary && (doneCount || resume)) summary.textContent = `${doneCount} of ${items.length} lessons done (kept in this browser)`;
  const cont = document.querySelector<HTMLElement>('[data-continue]');
  if (cont && resume) {
    const a = document.createElement('a');
    a.className = 'button primary';
    a.href = `/lessons/${resume.shape.id}/${resume.step ? `#step-${resume.step}` : ''}`;
    a.textContent = `Continue: ${resume.shape.title} →`;
    cont.append(a);
  }
}

// A lesson page: reads the lesson's shape from the page, then starts the workbench, the instructions
// and the split. Exposes the workbench on window.berth for the end-to-end tests' measurements.
import { startInstructions } from './instructions.ts';
import type { LessonShape } from './progress.ts';
import { initSplit } from './split.ts';
import { Workbench } from './workbench.ts';
import { loadSession } from './session.ts';
import { watchWorkshopMessages } from './workshop-messages.ts';

declare global { interface Window { berth?: { workbench: Workbench } } }

export function startLessonPage() {
  const shape = JSON.parse(document.getElementById('lesson-data')!.textContent!) as LessonShape;
  const wb = new Workbench(document.getElementById('workbench')!, shape);
  startInstructions(document.getElementById('instructions')!, shape, wb);
  initSplit(document.querySelector<HTMLElement>('.lesson-layout')!, document.querySelector<HTMLElement>('[data-splitter]')!);
  document.querySelector('[data-skip-terminal]')?.addEventListener('click', (e) => { e.preventDefault(); wb.focusTerminal(); });
  window.berth = { workbench: wb };
  wb.init();
  // A workshop learner's session also brings the instructor's broadcasts (polled; nothing for others).
  watchWorkshopMessages(() => loadSession(shape.id));
}

// A lesson page: reads the lesson's shape from the page, then starts the workbench, the instructions
// and the split. Exposes the workbench on window.berth for the end-to-end tests' measurements.
import { call } from './client.ts';
import { startInstructions } from './instructions.ts';
import type { LessonShape } from './progress.ts';
import { initSplit } from './split.ts';
import { Workbench } from './workbench.ts';

declare global {
  interface Window {
    berth?: { workbench: Workbench };
  }
}

export function startLessonPage() {
  const shape = JSON.parse(document.getElementById('lesson-data')!.textContent!) as LessonShape;
  const wb = new Workbench(document.getElementById('workbench')!, shape);
  startInstructions(document.getElementById('instructions')!, shape, wb);
  initSplit(document.querySelector<HTMLElement>('.lesson-layout')!, document.querySelector<HTMLElement>('[data-splitter]')!);
  document.querySelector('[data-skip-terminal]')?.addEventListener('click', (e) => {
    e.preventDefault();
    wb.focusTerminal();
  });
  window.berth = { workbench: wb };
  wb.init();
  const sr = document.querySelector<HTMLInputElement>('[data-screen-reader]');
  if (sr) {
    sr.checked = wb.screenReaderOn;
    sr.addEventListener('change', () => wb.setScreenReader(sr.checked));
  }
  void showSandboxNotes();
  // The copy/paste hint names the keys of this platform.
  if (/Mac|iPhone|iPad/.test(navigator.platform)) for (const k of document.querySelectorAll('[data-mod]')) k.textContent = 'Cmd';
}

/** Shows the lesson's `sandbox` notes that are about this server's sandboxes (every data-* fact must match).
 *  They stay hidden when the server cannot be asked: a note about another kind of sandbox would mislead. */
async function showSandboxNotes() {
  const notes = document.querySelectorAll<HTMLElement>('.berth-sandbox-note');
  if (!notes.length) return;
  let facts: Record<string, string>;
  try {
    facts = await call('GET /api/sandbox-facts', {});
  } catch {
    return;
  }
  for (const n of notes) n.hidden = !Object.entries(n.dataset).every(([k, v]) => facts[k] === v);
  // Says which notes were chosen (and that they were), for styles and for the e2e.
  document.documentElement.dataset.sandboxEngine = facts.engine;
}

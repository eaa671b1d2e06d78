// The resizable split between instructions and workbench: drag, or arrow keys on the separator.
// The share is remembered; on narrow screens the columns stack and the separator is hidden.
const KEY = 'berth.split';
const MIN = 20;
const MAX = 80;

export function initSplit(layout: HTMLElement, sep: HTMLElement) {
  const set = (pct: number, remember = true) => {
    const v = Math.round(Math.min(MAX, Math.max(MIN, pct)));
    layout.style.setProperty('--split', `${v}%`);
    sep.setAttribute('aria-valuenow', String(v));
    if (remember)
      try {
        localStorage.setItem(KEY, String(v));
      } catch {
        /* not remembered */
      }
  };
  const stored = Number(localStorage.getItem(KEY));
  if (stored >= MIN && stored <= MAX) set(stored, false);

  sep.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    sep.setPointerCapture(e.pointerId);
    const box = layout.getBoundingClientRect();
    const move = (ev: PointerEvent) => set(((ev.clientX - box.left) / box.width) * 100);
    const up = () => {
      sep.removeEventListener('pointermove', move);
      sep.removeEventListener('pointerup', up);
    };
    sep.addEventListener('pointermove', move);
    sep.addEventListener('pointerup', up);
  });
  sep.addEventListener('keydown', (e) => {
    const now = Number(sep.getAttribute('aria-valuenow'));
    const step = e.shiftKey ? 10 : 2;
    const to = e.key === 'ArrowLeft' ? now - step : e.key === 'ArrowRight' ? now + step : e.key === 'Home' ? MIN : e.key === 'End' ? MAX : NaN;
    if (Number.isNaN(to)) return;
    e.preventDefault();
    set(to);
  });
}

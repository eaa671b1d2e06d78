// Dark/light theme: an explicit choice is stored; without one the system preference applies.
export type Theme = 'dark' | 'light';

const media = () => window.matchMedia('(prefers-color-scheme: dark)');

export function currentTheme(): Theme {
  const set = document.documentElement.dataset.theme;
  if (set === 'dark' || set === 'light') return set;
  return media().matches ? 'dark' : 'light';
}

const listeners = new Set<(t: Theme) => void>();
export function onThemeChange(f: (t: Theme) => void) {
  listeners.add(f);
}

function apply(t: Theme, button: HTMLButtonElement | null) {
  document.documentElement.dataset.theme = t;
  if (button) button.setAttribute('aria-pressed', String(t === 'dark'));
  for (const f of listeners) f(t);
}

export function initThemeToggle() {
  const button = document.querySelector<HTMLButtonElement>('[data-theme-toggle]');
  if (!button) return;
  button.setAttribute('aria-pressed', String(currentTheme() === 'dark'));
  button.addEventListener('click', () => {
    const next: Theme = currentTheme() === 'dark' ? 'light' : 'dark';
    try {
      localStorage.setItem('berth.theme', next);
    } catch {
      /* private mode: the choice lasts for this page */
    }
    apply(next, button);
  });
  media().addEventListener('change', () => {
    if (!localStorage.getItem('berth.theme')) apply(currentTheme(), button);
  });
}

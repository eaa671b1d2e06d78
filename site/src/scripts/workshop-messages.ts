// On a lesson page of a workshop learner: the instructor's broadcasts, fetched by polling
// GET /api/sessions/:id/workshop?after=<last id> every ten seconds, shown in a polite live region.
import { api } from './api.ts';
import type { Session } from './session.ts';
import { readJson, writeJson } from './storage.ts';

type Info = { workshop: { title: string; state: string }; messages: { id: number; text: string; at: string }[] };

export function watchWorkshopMessages(session: () => Session | null, host: HTMLElement = document.body) {
  let box: HTMLElement | undefined;
  const seenKey = (s: Session) => `berth.workshop-seen.${s.workshop}`;
  const tick = async () => {
    const s = session();
    if (!s?.workshop || document.hidden) return;
    const after = readJson(seenKey(s), (v) => (typeof v === 'number' ? v : null)) ?? 0;
    let info: Info;
    try { info = await api<Info>('GET', `/api/sessions/${encodeURIComponent(s.id)}/workshop?after=${after}`, { token: s.token }); } catch { return; }
    if (!info.messages.length) return;
    writeJson(seenKey(s), info.messages[info.messages.length - 1].id);
    box ??= makeBox(host);
    for (const m of info.messages) {
      const li = document.createElement('li');
      const time = document.createElement('time');
      time.dateTime = m.at;
      time.textContent = new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      li.append(time, ' ', m.text);
      box.querySelector('ol')!.append(li);
    }
    box.hidden = false;
  };
  void tick();
  setInterval(() => void tick(), 10_000);
}

function makeBox(host: HTMLElement) {
  const box = document.createElement('aside');
  box.className = 'workshop-messages';
  // Styled here: lesson pages do not load the instructor pages' stylesheet.
  box.style.cssText = 'position:fixed;right:1rem;bottom:1rem;z-index:50;max-width:26rem;padding:0.75rem 1rem;'
    + 'background:var(--surface);color:var(--text);border:2px solid var(--accent);border-radius:var(--radius);box-shadow:0 4px 18px rgb(0 0 0 / 0.18)';
  box.setAttribute('aria-label', 'Messages from your instructor');
  box.setAttribute('role', 'status');
  box.setAttribute('aria-live', 'polite');
  const title = document.createElement('strong');
  title.textContent = 'From your instructor';
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = 'Dismiss';
  close.addEventListener('click', () => { box.hidden = true; box.querySelector('ol')!.replaceChildren(); });
  const list = document.createElement('ol');
  list.style.cssText = 'margin:0.4rem 0;padding-left:1.1rem';
  box.append(title, list, close);
  host.append(box);
  return box;
}

// /join/: a learner enters the workshop code and a name, gets a sandbox session, and lands on the first
// lesson. The session is stored for every lesson of the workshop (one sandbox serves them all) and marked
// with the workshop, so the lesson pages report progress to the instructor.
import { ApiFailure } from './api.ts';
import { call } from './client.ts';
import { saveSession, type Session } from './session.ts';
import { isRecord, readJson, writeJson } from './storage.ts';

/** What this browser remembers of a join: the key lets the same person back in if their sandbox went away. */
type Remembered = { name: string; key: string; workshop: string };

const memory = (code: string) => `berth.workshop.${code}`;
const parseRemembered = (v: unknown): Remembered | null =>
  isRecord(v) && typeof v.name === 'string' && typeof v.key === 'string' && typeof v.workshop === 'string'
    ? { name: v.name, key: v.key, workshop: v.workshop }
    : null;
const clean = (code: string) => code.toUpperCase().replace(/[^A-Z0-9]/g, '');

export function startJoinPage() {
  const form = document.querySelector<HTMLFormElement>('[data-join]')!;
  const codeInput = form.querySelector<HTMLInputElement>('input[name="code"]')!;
  const nameInput = form.querySelector<HTMLInputElement>('input[name="name"]')!;
  const error = form.querySelector<HTMLElement>('[data-join-error]')!;
  const preview = document.querySelector<HTMLElement>('[data-preview]')!;

  async function show(code: string) {
    try {
      const w = await call('GET /api/join/:code', { params: { code } });
      const time = (iso: string) => new Date(iso).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
      preview.textContent =
        `“${w.title}”, ${time(w.startsAt)} – ${time(w.endsAt)}. ` +
        (w.state === 'ended' ? 'It has ended.' : w.seatsLeft > 0 ? `${w.seatsLeft} seat${w.seatsLeft === 1 ? '' : 's'} left.` : 'It is full.');
    } catch (err) {
      preview.textContent = err instanceof ApiFailure ? err.message : 'Your instructor gives you a six-letter code.';
    }
  }

  const fromLink = new URLSearchParams(location.search).get('code');
  if (fromLink) {
    codeInput.value = clean(fromLink);
    const r = readJson(memory(codeInput.value), parseRemembered);
    if (r) nameInput.value = r.name;
    void show(codeInput.value);
    nameInput.focus();
  } else {
    codeInput.focus();
  }
  codeInput.addEventListener('change', () => {
    if (clean(codeInput.value).length >= 4) void show(clean(codeInput.value));
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const code = clean(codeInput.value);
    const name = nameInput.value.trim();
    const before = readJson(memory(code), parseRemembered);
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    button.disabled = true;
    button.textContent = 'Starting your sandbox…';
    try {
      const j = await call('POST /api/join', { body: { code, name, ...(before && before.name === name ? { key: before.key } : {}) } });
      writeJson(memory(code), { name: j.learner.name, key: j.learner.key, workshop: j.workshop.id } satisfies Remembered);
      const nodes = j.session.nodes.map((n) => n.name);
      for (const lesson of j.workshop.lessons) {
        const s: Session = {
          id: j.session.id,
          token: j.session.token,
          lesson,
          expiresAt: j.session.expiresAt,
          nodes,
          tabs: nodes.map((n) => `${n}/1`),
          workshop: j.workshop.id,
          workshopCode: code,
        };
        saveSession(s);
      }
      location.assign(`/lessons/${encodeURIComponent(j.workshop.lessons[0])}/`);
    } catch (err) {
      error.textContent =
        err instanceof ApiFailure
          ? err.code === 'NAME_TAKEN'
            ? `${err.message} (If that was you on another device, add something to your name.)`
            : err.message
          : 'Something went wrong in this page.';
      button.disabled = false;
      button.textContent = 'Join';
    }
  });
}

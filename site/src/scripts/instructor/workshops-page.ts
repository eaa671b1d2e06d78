// /instructor/: the list of workshops and the form that creates one.
import type { Body } from '../client.ts';
import { adminApi, describe, el, isUnauthorized, STATE_LABEL, when } from './admin.ts';
import { tokenGate } from './gate.ts';

const pad = (n: number) => String(n).padStart(2, '0');
/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
const localInput = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;

export function startWorkshopsPage() {
  const gate = tokenGate(() => {
    void list();
    prepareForm();
  });

  async function list() {
    const status = document.querySelector<HTMLElement>('[data-list-status]')!;
    const table = document.querySelector<HTMLTableElement>('[data-workshops]')!;
    try {
      const { workshops } = await adminApi('GET /api/workshops', {});
      table.tBodies[0].replaceChildren(
        ...workshops.map((w) =>
          el(
            'tr',
            { 'data-state': w.state },
            el('td', {}, el('a', { href: `/instructor/workshop/?id=${encodeURIComponent(w.id)}` }, w.title)),
            el('td', { class: 'code' }, w.code),
            el('td', {}, STATE_LABEL[w.state]),
            el('td', {}, when(w.startsAt)),
            el('td', {}, when(w.endsAt)),
            el('td', {}, `${w.seated} / ${w.capacity}${w.learners > w.seated ? ` (${w.learners} joined)` : ''}`),
          ),
        ),
      );
      table.hidden = workshops.length === 0;
      status.textContent = workshops.length
        ? `${workshops.length} workshop${workshops.length === 1 ? '' : 's'}`
        : 'No workshops yet. Create the first one below.';
    } catch (err) {
      if (isUnauthorized(err)) return gate.refused();
      status.textContent = describe(err);
    }
  }

  function prepareForm() {
    const form = document.querySelector<HTMLFormElement>('[data-new-workshop]')!;
    const error = form.querySelector<HTMLElement>('[data-new-error]')!;
    const start = new Date(Date.now() + 15 * 60_000);
    start.setMinutes(Math.ceil(start.getMinutes() / 5) * 5, 0, 0);
    (form.elements.namedItem('startsAt') as HTMLInputElement).value = localInput(start);
    (form.elements.namedItem('endsAt') as HTMLInputElement).value = localInput(new Date(start.getTime() + 2 * 3600_000));
    // Nodes per learner follows the most demanding lesson picked (the instructor may still change it).
    form.addEventListener('change', (e) => {
      if (!(e.target instanceof HTMLInputElement) || e.target.name !== 'lessons') return;
      const picked = [...form.querySelectorAll<HTMLInputElement>('input[name="lessons"]:checked')];
      (form.elements.namedItem('nodesPerLearner') as HTMLInputElement).value = String(Math.max(1, ...picked.map((i) => Number(i.dataset.nodes))));
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      const f = new FormData(form);
      const num = (k: string) => (f.get(k) === '' || f.get(k) === null ? undefined : Number(f.get(k)));
      const lessons = f.getAll('lessons').map(String);
      if (!lessons.length) {
        error.textContent = 'Pick at least one lesson.';
        return;
      }
      const limits = { memory: String(f.get('memory') ?? '') || undefined, cpus: num('cpus'), pids: num('pids') };
      const body = {
        title: String(f.get('title')),
        lessons,
        startsAt: new Date(String(f.get('startsAt'))).toISOString(),
        endsAt: new Date(String(f.get('endsAt'))).toISOString(),
        capacity: num('capacity'),
        expectedLearners: num('expectedLearners'),
        nodesPerLearner: num('nodesPerLearner'),
        stuckMinutes: num('stuckMinutes'),
        ...(Object.values(limits).some((v) => v !== undefined) ? { limits } : {}),
      };
      const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
      button.disabled = true;
      try {
        // An empty capacity field is sent as missing: the server's answer names it.
        const w = await adminApi('POST /api/workshops', { body: body as Body<'POST /api/workshops'> });
        location.assign(`/instructor/workshop/?id=${encodeURIComponent(w.id)}`);
      } catch (err) {
        if (isUnauthorized(err)) return gate.refused();
        error.textContent = describe(err);
        button.disabled = false;
      }
    });
  }
}

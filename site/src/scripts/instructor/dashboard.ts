// /instructor/workshop/?id=: the live dashboard. Rows come from the server's event stream
// (GET /api/workshops/:id/events, opened with a one-minute ticket since EventSource sends no headers);
// after a drop the page takes a new ticket and the stream starts again from a snapshot.
import { confirmDialog } from '../dialog.ts';
import { adminApi, ago, describe, el, gib, isUnauthorized, mib, STATE_LABEL, ticket, when, type LearnerRow, type Workshop } from './admin.ts';
import { tokenGate } from './gate.ts';
import { ShadowTerminal } from './shadow.ts';

type SortKey = 'name' | 'lesson' | 'checks' | 'quiz' | 'activity' | 'sandbox';
const SANDBOX_LABEL: Record<LearnerRow['sandbox'], string> = {
  joining: 'starting',
  ready: 'ready',
  resetting: 'resetting…',
  gone: 'gone',
  removed: 'removed',
  lost: 'machine lost',
};
const hhmm = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
/** The sandbox column: its state, or what a planned maintenance of its machine does to it. */
const sandboxLabel = (r: Pick<LearnerRow, 'sandbox' | 'maintenanceAt'>) =>
  r.maintenanceAt && r.sandbox === 'lost'
    ? `ended: machine maintenance (${hhmm(r.maintenanceAt)})`
    : r.maintenanceAt && r.sandbox !== 'gone' && r.sandbox !== 'removed'
      ? `machine maintenance at ${hhmm(r.maintenanceAt)}`
      : SANDBOX_LABEL[r.sandbox];
const RETRY = [1000, 2000, 5000, 10000, 20000];

export function startDashboard() {
  const id = new URLSearchParams(location.search).get('id') ?? '';
  const $ = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
  const base = `/api/workshops/${encodeURIComponent(id)}`;
  const rows = new Map<string, LearnerRow>();
  let workshop: Workshop | undefined;
  let sort: { key: SortKey; dir: 1 | -1 } = { key: 'name', dir: 1 };
  let source: EventSource | undefined;
  let attempt = 0;
  let shadow: ShadowTerminal | undefined;
  let watching: LearnerRow | undefined;
  let frame = 0;

  const gate = tokenGate(() => void start());
  const fail = (err: unknown) => {
    if (isUnauthorized(err)) return gate.refused();
    $('[data-error]').textContent = describe(err);
  };
  const act = (f: () => Promise<unknown>) => async () => {
    $('[data-error]').textContent = '';
    try {
      await f();
    } catch (err) {
      fail(err);
    }
  };

  async function start() {
    if (!id) {
      $('[data-error]').textContent = 'No workshop chosen: open one from the workshop list.';
      return;
    }
    wire();
    await connect();
    setInterval(render, 5000); // "3 min ago" ages even without events
  }

  // ---- the stream ----
  async function connect() {
    source?.close();
    setLive('Connecting…', false);
    let t: string;
    try {
      t = await ticket(id);
    } catch (err) {
      if (isUnauthorized(err)) return gate.refused();
      return retry();
    }
    const es = new EventSource(`${base}/events?ticket=${encodeURIComponent(t)}`);
    source = es;
    es.addEventListener('snapshot', (e) => {
      attempt = 0;
      const d = JSON.parse((e as MessageEvent<string>).data) as {
        workshop: Workshop;
        learners: LearnerRow[];
        messages: { id: number; text: string; at: string }[];
      };
      rows.clear();
      for (const r of d.learners) rows.set(r.id, r);
      setWorkshop(d.workshop);
      $('[data-messages]').replaceChildren(...d.messages.map(messageItem));
      setLive('Live', true);
      render();
    });
    es.addEventListener('learner', (e) => {
      const r = JSON.parse((e as MessageEvent<string>).data) as LearnerRow;
      rows.set(r.id, r);
      if (watching?.id === r.id) watching = r;
      schedule();
    });
    es.addEventListener('workshop', (e) => setWorkshop({ ...workshop, ...JSON.parse((e as MessageEvent<string>).data) } as Workshop));
    es.addEventListener('message', (e) => $('[data-messages]').append(messageItem(JSON.parse((e as MessageEvent<string>).data))));
    // Tickets are single use, so the browser's own reconnect would be refused: take a new one instead.
    es.onerror = () => {
      if (source === es) {
        es.close();
        retry();
      }
    };
  }

  function retry() {
    const ms = RETRY[Math.min(attempt++, RETRY.length - 1)];
    setLive(`Reconnecting in ${Math.round(ms / 1000)} s…`, false);
    setTimeout(() => void connect(), ms);
  }

  function setLive(text: string, live: boolean) {
    const e = $('[data-live]');
    e.textContent = text;
    e.dataset.live = String(live);
  }

  // ---- header ----
  function setWorkshop(w: Workshop) {
    workshop = w;
    document.title = `${w.title} · Berth instructor`;
    $('[data-title]').textContent = w.title;
    $('[data-times]').textContent =
      `${when(w.startsAt)} – ${when(w.endsAt)} · ${w.lessons.length} lesson${w.lessons.length === 1 ? '' : 's'} · ${w.nodesPerLearner} node${w.nodesPerLearner === 1 ? '' : 's'} each`;
    const badge = $('[data-state-badge]');
    badge.textContent = STATE_LABEL[w.state];
    badge.dataset.state = w.state;
    $('[data-code]').textContent = w.code;
    const link = $<HTMLAnchorElement>('[data-join-link]');
    if (w.joinUrl) {
      link.href = w.joinUrl;
      link.textContent = w.joinUrl;
    }
    $('[data-seated]').textContent = `${w.seated} / ${w.capacity}`;
    // After the end the code no longer lets anyone in: the results matter now, not the way in.
    $('[data-join-box]').hidden = w.state === 'ended';
    const over = $('[data-ended-note]');
    over.hidden = w.state !== 'ended';
    if (w.state === 'ended')
      over.textContent = `This workshop ended${w.endedAt ? ` at ${when(w.endedAt)}` : ''}; its code ${w.code} no longer lets anyone join. The results below stay, and Export results saves them.`;
    if (w.pool) $('[data-pool]').textContent = `${w.pool.ready} ready${w.pool.starting ? `, ${w.pool.starting} starting` : ''} (target ${w.pool.target})`;
    const ended = w.state === 'ended';
    for (const sel of ['[data-start-now]', '[data-end]', '[data-prewarm]', '[data-broadcast] button']) $<HTMLButtonElement>(sel).disabled = ended;
    $<HTMLButtonElement>('[data-start-now]').hidden = w.state === 'running' || ended;
    const nodes = $<HTMLSelectElement>('[data-shadow-node]');
    if (nodes.options.length !== w.nodesPerLearner) {
      nodes.replaceChildren(...Array.from({ length: w.nodesPerLearner }, (_, i) => el('option', {}, `node${i + 1}`)));
    }
  }

  // ---- the table ----
  function schedule() {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(render);
  }

  const value = (r: LearnerRow, k: SortKey): string | number =>
    ({
      name: r.name.toLocaleLowerCase(),
      lesson: `${r.lesson ?? ''}\u0000${r.step ?? ''}`,
      checks: r.checksPassed,
      quiz: r.quizAnswered,
      activity: Date.parse(r.lastActivityAt),
      sandbox: r.sandbox,
    })[k];

  function render() {
    const onlyStuck = $<HTMLInputElement>('[data-only-stuck]').checked;
    const all = [...rows.values()];
    const shown = all
      .filter((r) => !onlyStuck || r.stuck)
      .sort((a, b) => {
        const x = value(a, sort.key);
        const y = value(b, sort.key);
        return (x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name)) * sort.dir;
      });
    const now = Date.now();
    $<HTMLTableElement>('[data-learners]').tBodies[0].replaceChildren(...shown.map((r) => row(r, now)));
    const stuck = all.filter((r) => r.stuck).length;
    $('[data-counts]').textContent = `(${all.length} learner${all.length === 1 ? '' : 's'}${stuck ? `, ${stuck} stuck` : ''})`;
    $('[data-empty]').hidden = all.length > 0;
  }

  function row(r: LearnerRow, now: number) {
    const live = r.sandbox === 'ready';
    const watch = el('button', { type: 'button', 'aria-label': `Watch ${r.name}'s terminal` }, 'Watch');
    watch.addEventListener('click', () => openShadow(r));
    (watch as HTMLButtonElement).disabled = !live;
    const reset = el('button', { type: 'button', 'aria-label': `Reset ${r.name}'s sandbox` }, 'Reset');
    (reset as HTMLButtonElement).disabled = !live;
    reset.addEventListener(
      'click',
      act(async () => {
        if (
          !(await confirmDialog({
            title: `Reset ${r.name}'s sandbox?`,
            text: 'Their engine is rebuilt from nothing: containers, images and files in it are lost. Their progress and their place in the workshop stay.',
            ok: 'Reset sandbox',
          }))
        )
          return;
        await adminApi('POST /api/workshops/:id/learners/:learner/reset', { params: { id, learner: r.id } });
      }),
    );
    const tr = el(
      'tr',
      { 'data-learner': r.id, ...(r.stuck ? { class: 'stuck' } : {}) },
      el('th', { scope: 'row' }, r.name, ...(r.stuck ? [' ', el('span', { class: 'badge stuck-badge' }, 'stuck')] : [])),
      el(
        'td',
        { title: r.lesson ? `${r.lesson}${r.step ? ` / ${r.step}` : ''}` : '' },
        r.lesson ? `${r.lessonTitle ?? r.lesson}${r.step ? ` · ${r.stepTitle ?? r.step}` : ''}` : '–',
      ),
      el(
        'td',
        { class: 'num' },
        String(r.checksPassed),
        ...(r.checksPassed > r.checksVerified
          ? [el('span', { class: 'muted', title: 'reported by the page, not run by the server' }, ` (${r.checksPassed - r.checksVerified} self-reported)`)]
          : []),
      ),
      el('td', { class: 'num' }, String(r.quizAnswered)),
      el('td', { title: new Date(r.lastActivityAt).toLocaleString() }, ago(r.lastActivityAt, now)),
      el('td', { 'data-sandbox': r.sandbox, ...(r.maintenanceAt ? { 'data-maintenance': 'true' } : {}) }, sandboxLabel(r)),
      el('td', { class: 'actions' }, watch, reset),
    );
    return tr;
  }

  // ---- the instructor's terminal ----
  async function openShadow(r: LearnerRow, takeover = false) {
    watching = r;
    const panel = $('[data-shadow]');
    panel.hidden = false;
    $('[data-shadow-title]').textContent = `${r.name}: ${takeover ? 'you have the keyboard' : 'watching (read-only)'}`;
    const button = $<HTMLButtonElement>('[data-takeover]');
    button.textContent = takeover ? 'Give back (read-only)' : 'Take over';
    button.dataset.active = String(takeover);
    shadow?.close();
    // Offer only the learner's real nodes and open terminal tabs.
    const tabs = await adminApi('GET /api/workshops/:id/learners/:learner/tabs', { params: { id, learner: r.id } }).catch(() => null);
    if (tabs?.nodes.length) {
      const nodeSel = $<HTMLSelectElement>('[data-shadow-node]');
      const want = nodeSel.value;
      nodeSel.replaceChildren(...tabs.nodes.map((n) => el('option', {}, n.name)));
      nodeSel.value = tabs.nodes.some((n) => n.name === want) ? want : tabs.nodes[0].name;
      const open = tabs.nodes.find((n) => n.name === nodeSel.value)!.tabs;
      const tabSel = $<HTMLSelectElement>('[data-shadow-tab]');
      const wantTab = tabSel.value;
      const list = open.length ? open : ['1'];
      tabSel.replaceChildren(...list.map((t) => el('option', {}, t)));
      tabSel.value = list.includes(wantTab) ? wantTab : list[0];
    }
    let t: string;
    try {
      t = await ticket(id);
    } catch (err) {
      return fail(err);
    }
    shadow = new ShadowTerminal($('[data-shadow-term]'), (text) => {
      $('[data-shadow-status]').textContent = text;
    });
    await shadow.open({
      workshopId: id,
      learnerId: r.id,
      ticket: t,
      takeover,
      as: instructorName(),
      node: $<HTMLSelectElement>('[data-shadow-node]').value,
      tab: $<HTMLSelectElement>('[data-shadow-tab]').value,
    });
    panel.scrollIntoView({ block: 'nearest' });
  }

  const NAME_KEY = 'berth.instructor-name';
  function instructorName() {
    return $<HTMLInputElement>('[data-instructor-name]').value.trim();
  }

  function wire() {
    const nameInput = $<HTMLInputElement>('[data-instructor-name]');
    try {
      nameInput.value = localStorage.getItem(NAME_KEY) ?? '';
    } catch {
      /* storage off: the field starts empty */
    }
    nameInput.addEventListener('change', () => {
      try {
        localStorage.setItem(NAME_KEY, nameInput.value.trim());
      } catch {
        /* kept for this page only */
      }
    });
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-sort]')) {
      b.addEventListener('click', () => {
        const key = b.dataset.sort as SortKey;
        sort = { key, dir: sort.key === key ? (sort.dir === 1 ? -1 : 1) : key === 'name' || key === 'lesson' ? 1 : -1 };
        for (const th of document.querySelectorAll('th[aria-sort]')) th.removeAttribute('aria-sort');
        b.parentElement!.setAttribute('aria-sort', sort.dir === 1 ? 'ascending' : 'descending');
        render();
      });
    }
    $('[data-only-stuck]').addEventListener('change', render);
    // The second click: from watching to typing, and back.
    $('[data-takeover]').addEventListener('click', () => {
      if (watching) void openShadow(watching, $('[data-takeover]').dataset.active !== 'true');
    });
    for (const sel of ['[data-shadow-node]', '[data-shadow-tab]'])
      $(sel).addEventListener('change', () => {
        if (watching) void openShadow(watching, $('[data-takeover]').dataset.active === 'true');
      });
    $('[data-shadow-close]').addEventListener('click', () => {
      shadow?.close();
      shadow = undefined;
      watching = undefined;
      $('[data-shadow]').hidden = true;
    });

    $('[data-copy-link]').addEventListener('click', () => {
      const link = $<HTMLAnchorElement>('[data-join-link]').href;
      void navigator.clipboard?.writeText(link).then(() => {
        $('[data-copy-link]').textContent = 'Copied';
        setTimeout(() => {
          $('[data-copy-link]').textContent = 'Copy link';
        }, 1500);
      });
    });
    $('[data-start-now]').addEventListener(
      'click',
      act(async () => {
        setWorkshop(await adminApi('PATCH /api/workshops/:id', { params: { id }, body: { startsAt: new Date().toISOString() } }));
      }),
    );
    $('[data-prewarm]').addEventListener(
      'click',
      act(async () => {
        const r = await adminApi('POST /api/workshops/:id/prewarm', { params: { id }, body: {} });
        if (workshop) setWorkshop({ ...workshop, pool: r.pool });
      }),
    );
    $('[data-measure]').addEventListener(
      'click',
      act(async () => {
        const p = $('[data-capacity]');
        p.textContent = 'Measuring an idle learner engine…';
        const c = await adminApi('GET /api/workshops/:id/capacity', { params: { id }, query: { refresh: 1 } });
        const machines = c.host.machines;
        const where = machines
          ? `These ${machines.length} machine${machines.length === 1 ? '' : 's'} (${machines.map((m) => `${m.name}: ${gib(m.memoryAvailableBytes)} of ${gib(m.memoryTotalBytes)} free`).join(', ')}) hold`
          : 'This host holds';
        p.textContent =
          `${where} about ${c.holds} learner sandbox${c.holds === 1 ? '' : 'es'} of this workshop's shape (${c.more} more now)` +
          ` ${c.enough ? '— enough' : `— NOT enough for ${workshop?.capacity ?? '?'}`}. An idle engine uses ${mib(c.sample.idleMemoryBytes)}` +
          ` (measured on ${c.sample.engines} ${c.sample.source === 'pool' ? 'warm' : 'probe'} engine${c.sample.engines === 1 ? '' : 's'});` +
          ` ${gib(c.host.memoryAvailableBytes)} of ${gib(c.host.memoryTotalBytes)} available, ${gib(c.host.reserveBytes)} kept in reserve.` +
          ` If every learner filled their memory limit, ${c.fits.memoryLimit} would fit.`;
        if (workshop) setWorkshop({ ...workshop, pool: c.pool });
      }),
    );
    $('[data-export]').addEventListener(
      'click',
      act(async () => {
        // A plain link cannot carry the header; a ticket can, and the browser then saves the file itself.
        const t = await ticket(id);
        const a = el('a', { href: `${base}/results.csv?ticket=${encodeURIComponent(t)}`, download: '' });
        document.body.append(a);
        a.click();
        a.remove();
      }),
    );
    $('[data-end]').addEventListener(
      'click',
      act(async () => {
        if (
          !(await confirmDialog({
            title: 'End the workshop now?',
            text: 'Every learner sandbox is removed at once and nobody can join any more. The results stay here and in the CSV export.',
            ok: 'End workshop',
          }))
        )
          return;
        setWorkshop(await adminApi('POST /api/workshops/:id/end', { params: { id } }));
      }),
    );
    $<HTMLFormElement>('[data-broadcast]').addEventListener('submit', (e) => {
      e.preventDefault();
      const form = e.target as HTMLFormElement;
      const text = String(new FormData(form).get('text') ?? '').trim();
      if (!text) return;
      void act(async () => {
        await adminApi('POST /api/workshops/:id/messages', { params: { id }, body: { text } });
        form.reset();
      })();
    });
  }

  function messageItem(m: { text: string; at: string }) {
    return el('li', {}, el('time', { datetime: m.at }, new Date(m.at).toLocaleTimeString()), ' ', m.text);
  }
}

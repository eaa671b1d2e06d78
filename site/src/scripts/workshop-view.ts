// What a workshop learner's lesson page shows of the workshop, from the session's event stream
// (live.ts): the workshop and the learner's name in the page header, the instructor's broadcasts in a
// box at the top of the instructions (never over the terminal or the ports), and a banner in the
// workbench while the instructor watches or types in the learner's terminal.
import { call } from './client.ts';
import type { Session } from './session.ts';
import { readJson, writeJson } from './storage.ts';

export type WorkshopInfo = {
  workshop: { id: string; code?: string; title: string; state: string; endsAt: string };
  learner: { id: string; name: string };
};
type Message = { id: number; text: string; at: string };
export type WatchState = { watching: boolean; takeover: boolean; by: string[] };

const seenKey = (s: Session) => `berth.workshop-seen.${s.workshop}`;

export class WorkshopView {
  private readonly root: HTMLElement;
  info: WorkshopInfo | undefined;

  constructor(root: HTMLElement) {
    this.root = root;
  }

  show(s: Session, info: WorkshopInfo) {
    this.info = info;
    const badge = document.querySelector<HTMLElement>('[data-workshop-badge]');
    if (!badge) return;
    badge.hidden = false;
    badge.querySelector('[data-workshop-title]')!.textContent = info.workshop.title;
    badge.querySelector('[data-workshop-learner]')!.textContent = info.learner.name;
    badge.querySelector('[data-workshop-state]')!.textContent = info.workshop.state === 'ended' ? ' (ended)' : '';
    void s;
  }

  lastSeen(s: Session) {
    return readJson(seenKey(s), (v) => (typeof v === 'number' ? v : null)) ?? 0;
  }

  message(s: Session, m: Message) {
    if (m.id <= this.lastSeen(s)) return;
    const box = document.querySelector<HTMLElement>('[data-workshop-messages]');
    if (!box) return;
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = m.at;
    time.textContent = new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(time, ' ', m.text);
    li.dataset.id = String(m.id);
    box.querySelector('ol')!.append(li);
    box.hidden = false;
    const dismiss = box.querySelector<HTMLButtonElement>('[data-dismiss]')!;
    dismiss.onclick = () => {
      // Read messages stay read after a reload.
      const last = Number(box.querySelector<HTMLElement>('li:last-child')?.dataset.id ?? 0);
      if (last) writeJson(seenKey(s), last);
      box.hidden = true;
      box.querySelector('ol')!.replaceChildren();
    };
  }

  /** The banner over the workbench's tabs: who is watching, and whether they have the keyboard. */
  watch(w: WatchState | null) {
    const el = this.root.querySelector<HTMLElement>('[data-watch]');
    if (!el) return;
    if (!w?.watching) {
      el.hidden = true;
      el.textContent = '';
      delete el.dataset.takeover;
      return;
    }
    const who = w.by.length ? w.by.join(' and ') : 'Your instructor';
    el.textContent = w.takeover
      ? `${who} has taken over your terminal: what they type goes to your shell.`
      : `${who} is watching your terminal (they cannot type in it).`;
    el.dataset.takeover = String(w.takeover);
    el.hidden = false;
  }

  joinUrl(s: Session) {
    const code = this.info?.workshop.code ?? s.workshopCode;
    return code ? `/join/?code=${encodeURIComponent(code)}` : '/join/';
  }

  /** The workshop's state now (its public preview by code), or what was last heard. */
  async refresh(s: Session): Promise<{ state: string; title: string }> {
    const code = this.info?.workshop.code ?? s.workshopCode;
    if (code) {
      try {
        const p = await call('GET /api/join/:code', { params: { code } });
        return { state: p.state, title: p.title };
      } catch {
        /* unreachable server: fall back to what the stream said */
      }
    }
    return { state: this.info?.workshop.state ?? 'unknown', title: this.info?.workshop.title ?? '' };
  }
}

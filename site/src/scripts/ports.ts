// The ports bar: published ports of the sandbox's nodes, each with a preview link. The session's event
// stream (live.ts) pushes the list when the node's engine starts or stops a container; while that stream
// is down, or on a server whose engine cannot be followed, the bar polls instead.
import { ApiFailure } from './api.ts';
import { listPorts, type Port, type Session } from './session.ts';

const EVERY_MS = 4000;

export class PortsBar {
  private readonly list: HTMLElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private session: Session | null = null;
  private shown = '';
  /** True while pushed updates arrive: no polling then. */
  private pushed = false;

  constructor(list: HTMLElement) {
    this.list = list;
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.session) this.poll();
    });
  }

  start(s: Session) {
    this.session = s;
    void this.poll();
  }

  /** The stream says whether it will push (the engine is followed) or not. */
  setPushed(on: boolean) {
    this.pushed = on;
    this.list.closest<HTMLElement>('.ports-bar')?.setAttribute('data-mode', on ? 'push' : 'poll');
    if (!on && this.session) this.soon();
  }

  /** A list pushed by the server. */
  push(ports: Port[]) {
    if (!this.session) return;
    if (this.pushed) clearTimeout(this.timer);
    this.render(ports);
  }

  stop(note = 'Published ports appear here once the sandbox runs.') {
    this.session = null;
    clearTimeout(this.timer);
    this.note(note);
  }

  /** Asks now (after a command that may have published a port) instead of at the next tick. */
  soon() {
    if (this.session && !this.pushed) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.poll(), 1200);
    }
  }

  private async poll() {
    clearTimeout(this.timer);
    const s = this.session;
    if (!s || document.hidden) return;
    try {
      const { ports } = await listPorts(s);
      if (s !== this.session) return;
      this.render(ports);
    } catch (err) {
      if (s !== this.session) return;
      if (err instanceof ApiFailure && err.status === 404 && err.code === 'NOT_FOUND') {
        // A server without the previews feature: say so once and stop asking.
        this.session = null;
        return this.note('Port previews are not available on this server.');
      }
      if (err instanceof ApiFailure && err.sessionGone) return this.stop();
      // Other failures are the workbench's to report; keep the last list and try again later.
    }
    // Pushed lists need no poll; the links' tickets are refreshed with each push and every few minutes.
    this.timer = setTimeout(() => this.poll(), this.pushed ? 5 * 60_000 : EVERY_MS);
  }

  private note(text: string) {
    this.shown = '';
    const li = document.createElement('li');
    li.className = 'ports-empty';
    li.textContent = text;
    this.list.replaceChildren(li);
  }

  private render(ports: Port[]) {
    const key = JSON.stringify(ports.map((p) => [p.node, p.port, p.image, p.shared]));
    if (key === this.shown) {
      // Same ports: only refresh the links (their tickets expire).
      ports.forEach((p, i) => {
        const a = this.list.querySelectorAll('a')[i];
        if (a) a.href = p.url;
      });
      return;
    }
    if (!ports.length) {
      this.note('No published ports yet. Run a container with -p (for example -p 8080:80) and it shows up here.');
      this.shown = key;
      return;
    }
    this.shown = key;
    this.list.replaceChildren(
      ...ports.map((p) => {
        const li = document.createElement('li');
        li.className = 'port';
        const label = document.createElement('span');
        label.className = 'port-label';
        label.textContent = `${p.node}:${p.port}`;
        const img = document.createElement('span');
        img.className = 'port-image';
        img.textContent = p.image;
        const a = document.createElement('a');
        a.className = 'button';
        a.href = p.url;
        a.target = '_blank';
        a.rel = 'noopener';
        a.textContent = 'Open';
        a.setAttribute('aria-label', `Open port ${p.port} on ${p.node} (${p.image}) in a new tab`);
        li.append(label, img, a);
        return li;
      }),
    );
  }
}

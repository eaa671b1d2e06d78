// The workbench: the session's life (idle → starting → ready ⇄ reconnecting → expired / error), its
// terminal tabs, the lazily loaded editor, the timer and the ports bar. The pane always says what is
// going on and what the learner can do next; it is never blank.
import { ApiFailure } from './api.ts';
import { confirmDialog } from './dialog.ts';
import { PortsBar } from './ports.ts';
import type { LessonShape } from './progress.ts';
import * as S from './session.ts';
import { TerminalTab, type TermState } from './terminal.ts';
import { currentTheme, onThemeChange } from './theme.ts';

export type WbState = 'idle' | 'starting' | 'ready' | 'reconnecting' | 'expired' | 'error';
type Lib = typeof import('./xterm-lib.ts');
type Action = { label: string; run: () => void };
type EditorHandle = { shown: () => void; sessionChanged: () => void };

const STATUS: Record<WbState, string> = {
  idle: 'No sandbox yet', starting: 'Starting…', ready: 'Ready', reconnecting: 'Reconnecting…', expired: 'Sandbox ended', error: 'Problem',
};
const READY_TIMEOUT_MS = 60_000;

export class Workbench {
  readonly shape: LessonShape;
  state: WbState = 'idle';
  session: S.Session | null = null;
  private readonly root: HTMLElement;
  private readonly tablist: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly ports: PortsBar;
  private readonly terminals = new Map<string, TerminalTab>();
  private lib: Promise<Lib> | undefined;
  private active = 'node1/1';
  private busy: Promise<boolean> | undefined;
  private firstReady: ((ok: boolean) => void) | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;
  private lastPoll = 0;
  private idleEnd: number | undefined;
  private probing = false;
  private editor: Promise<EditorHandle | null> | undefined;
  readonly startedAt = performance.now();
  /** Milliseconds from page start to the first usable prompt, for the figures in README. */
  readyAfterMs: number | undefined;

  constructor(root: HTMLElement, shape: LessonShape) {
    this.root = root;
    this.shape = shape;
    this.tablist = root.querySelector('[data-tablist]')!;
    this.panels = root.querySelector('[data-panels]')!;
    this.ports = new PortsBar(root.querySelector('[data-ports]')!);
    this.wire();
    onThemeChange((t) => { for (const term of this.terminals.values()) term.setTheme(t); });
  }

  /** Reattaches to the lesson's remembered sandbox, if there is one. */
  init() {
    const stored = S.loadSession(this.shape.id);
    if (stored) void this.run(() => this.attach(stored, true));
    else this.setState('idle');
  }

  /** Resolves true once a sandbox is ready, starting one if needed. */
  ensureSession(): Promise<boolean> {
    if (this.session && (this.state === 'ready' || this.state === 'reconnecting')) return Promise.resolve(true);
    if (this.busy) return this.busy;
    return this.run(() => this.start());
  }

  /** Types a command into the first terminal of `node`. */
  async runCommand(node: string, text: string, interactive: boolean) {
    if (!(await this.ensureSession()) || !this.session) return;
    const key = this.session.tabs.find((t) => t.startsWith(`${node}/`));
    const term = key ? this.terminals.get(key) : undefined;
    if (!key || !term) return this.flash(`This sandbox has no ${node}. Reset the sandbox to get the lesson's nodes.`);
    this.select(key);
    term.type(`${text.replace(/\r?\n/g, '\r')}\r`);
    if (interactive) term.focus();
    if (/\s-p\s|--publish|-P\b|compose|service create/.test(text)) this.ports.soon();
  }

  async check(checkId: string): Promise<S.CheckResult> {
    if (!this.session || this.state === 'idle' || this.state === 'expired' || this.state === 'starting') {
      throw new ApiFailure(409, 'NO_SANDBOX', this.state === 'starting' ? 'The sandbox is still starting. Check again in a moment.' : 'Start the sandbox first, then do the step.');
    }
    try {
      return await S.runCheck(this.session, checkId);
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) this.expired();
      throw err;
    }
  }

  /** Tells a workshop's instructor about progress; a session outside a workshop sends nothing. */
  reportProgress(body: Record<string, unknown>) {
    const s = this.session;
    if (!s?.workshop) return;
    void fetch(S.path(s, '/progress'), {
      method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ lesson: this.shape.id, ...body }),
    }).catch(() => { /* the local copy is the learner's record */ });
  }

  async resetSandbox(ask = true) {
    if (ask && !(await confirmDialog({
      title: 'Reset the sandbox?',
      text: 'Everything in it (containers, images, volumes, files) is removed and a fresh sandbox starts. Your progress in the lesson is kept.',
      ok: 'Reset sandbox',
    }))) return;
    const s = this.session;
    this.teardown();
    // A workshop's sandbox is rebuilt in place (same session and token): the learner stays in the workshop.
    if (s?.workshop) {
      const reset = async () => {
        this.setState('starting', { title: 'Resetting your sandbox…', text: 'A fresh Docker engine replaces the old one.' });
        try { await S.resetWorkshopSandbox(s); } catch (err) { this.fail(err, () => void this.run(reset)); return false; }
        return this.attach(s, true);
      };
      await this.run(reset);
      return;
    }
    S.forgetSession(this.shape.id);
    if (s) await S.deleteSession(s).catch(() => { /* already gone, or the server is down: start() reports that */ });
    await this.run(() => this.start());
  }

  // ---- life cycle ----

  private run(f: () => Promise<boolean>): Promise<boolean> {
    const p = f().finally(() => { if (this.busy === p) this.busy = undefined; });
    this.busy = p;
    return p;
  }

  private async start(): Promise<boolean> {
    this.setState('starting', { title: 'Starting your sandbox…', text: 'A private Docker engine is being prepared for this lesson.' });
    this.lib ??= import('./xterm-lib.ts');
    let s: S.Session;
    try {
      s = await S.createSession(this.shape.id, this.shape.nodes);
    } catch (err) {
      this.fail(err, () => void this.run(() => this.start()));
      return false;
    }
    return this.attach(s, false);
  }

  private async attach(s: S.Session, reattaching: boolean): Promise<boolean> {
    this.setState('starting', { title: reattaching ? 'Reconnecting to your sandbox…' : 'Opening the terminal…', text: '' });
    this.lib ??= import('./xterm-lib.ts');
    if (reattaching) {
      try {
        const view = await S.fetchSession(s);
        s.expiresAt = view.expiresAt;
        s.nodes = view.nodes.map((n) => n.name);
      } catch (err) {
        if (err instanceof ApiFailure && err.sessionGone) { S.forgetSession(this.shape.id); this.expired(); return false; }
        this.fail(err, () => void this.run(() => this.attach(s, true)));
        return false;
      }
    }
    // Every node has at least its first tab; tabs of nodes that no longer exist are dropped.
    s.tabs = s.tabs.filter((t) => s.nodes.includes(t.split('/')[0]));
    for (const n of s.nodes) if (!s.tabs.some((t) => t.startsWith(`${n}/`))) s.tabs.push(`${n}/1`);
    s.tabs.sort((a, b) => s.nodes.indexOf(a.split('/')[0]) - s.nodes.indexOf(b.split('/')[0]));
    S.saveSession(s);
    this.session = s;
    let lib: Lib;
    try {
      lib = await this.lib;
    } catch {
      this.lib = undefined;
      this.fail(new ApiFailure(0, 'NETWORK', 'The terminal could not be loaded. Check your connection and try again.'), () => void this.run(() => this.attach(s, true)));
      return false;
    }
    this.syncTabs();
    const ready = new Promise<boolean>((ok) => { this.firstReady = ok; });
    for (const key of s.tabs) this.openTerminal(lib, key);
    this.select(this.terminals.has(this.active) ? this.active : s.tabs[0]);
    const timeout = setTimeout(() => this.firstReady?.(false), READY_TIMEOUT_MS);
    const ok = await ready;
    clearTimeout(timeout);
    if (this.session !== s) return false;
    if (!ok) {
      if (this.state === 'starting') this.fail(new ApiFailure(504, 'TERMINAL_TIMEOUT', 'The terminal did not answer in time.'), () => void this.run(() => this.attach(s, true)));
      return false;
    }
    this.readyAfterMs ??= performance.now() - this.startedAt;
    this.setState('ready');
    this.ports.start(s);
    this.startClock();
    void this.editorHandle()?.then((e) => e?.sessionChanged());
    return true;
  }

  private openTerminal(lib: Lib, key: string) {
    if (this.terminals.has(key)) return;
    const panel = this.panelFor(key);
    const [node, tab] = key.split('/');
    const t = new TerminalTab(lib, {
      host: panel.querySelector<HTMLElement>('[data-term-host]')!, node, tab, theme: currentTheme(),
      session: () => this.session, onState: (term, st) => this.onTerminal(term, st),
    });
    this.terminals.set(key, t);
  }

  private onTerminal(t: TerminalTab, st: TermState) {
    const key = `${t.node}/${t.tab}`;
    const banner = this.panelFor(key).querySelector<HTMLElement>('[data-banner]')!;
    switch (st.kind) {
      case 'connecting':
        if (this.state === 'ready') this.banner(banner, 'Connecting…');
        break;
      case 'ready':
        this.banner(banner, null);
        this.firstReady?.(true);
        this.firstReady = undefined;
        if (this.state === 'reconnecting' && ![...this.terminals.values()].some((x) => x.state.kind === 'reconnecting')) this.setState('ready');
        break;
      case 'reconnecting': {
        if (this.state === 'ready') this.setState('reconnecting');
        const secs = Math.ceil(st.inMs / 1000);
        this.banner(banner, `Connection lost. Reconnecting in ${secs} s…`, { label: 'Reconnect now', run: () => t.retryNow() });
        if (st.attempt >= 2) void this.probe(banner, t, secs);
        break;
      }
      case 'exited':
        this.banner(banner, `The shell on ${t.node} ended.`, { label: 'Open a new shell', run: () => t.connect() });
        // A removed sandbox ends its shells too: ask whether the session is still there.
        void this.probe(banner, t, 0);
        break;
      case 'gone':
      case 'unauthorized':
        this.expired();
        break;
      case 'failed':
        this.banner(banner, st.message, { label: 'Try again', run: () => t.connect() });
        if (this.state === 'starting') { this.firstReady?.(false); this.firstReady = undefined; }
        break;
    }
  }

  /** After repeated drops, asks the API why: the session may be gone, or the server down. */
  private async probe(banner: HTMLElement, t: TerminalTab, secs: number) {
    const s = this.session;
    if (!s || this.probing) return;
    this.probing = true;
    try {
      await S.fetchSession(s);
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) return this.expired();
      if (err instanceof ApiFailure && err.unreachable) {
        this.banner(banner, `Cannot reach the Berth server. Retrying in ${secs} s; your sandbox is kept.`, { label: 'Retry now', run: () => t.retryNow() });
      }
    } finally {
      this.probing = false;
    }
  }

  private expired(text = 'It reached its time limit, was idle too long, or was removed. Your progress in this lesson is kept.') {
    this.teardown();
    S.forgetSession(this.shape.id);
    this.setState('expired', { title: 'Your sandbox has ended', text, action: { label: 'Start a new sandbox', run: () => void this.run(() => this.start()) } });
  }

  private fail(err: unknown, retry: () => void) {
    const e = err instanceof ApiFailure ? err : new ApiFailure(0, 'INTERNAL', (err as Error).message);
    const title = e.unreachable ? 'Cannot reach the Berth server'
      : e.code === 'RATE_LIMITED' ? 'Too many new sandboxes'
        : e.code === 'OUT_OF_CAPACITY' ? 'No room for another sandbox'
          : 'The sandbox could not start';
    const text = `${e.message}${e.requestId ? ` (request ${e.requestId})` : ''}`;
    this.setState('error', { title, text, action: { label: 'Try again', run: retry } });
  }

  private teardown() {
    for (const t of this.terminals.values()) t.dispose();
    this.terminals.clear();
    this.session = null;
    this.ports.stop();
    clearInterval(this.clock);
    this.root.querySelector<HTMLElement>('[data-timer]')!.hidden = true;
    void this.editorHandle()?.then((e) => e?.sessionChanged());
  }

  // ---- timer ----

  private startClock() {
    clearInterval(this.clock);
    const el = this.root.querySelector<HTMLElement>('[data-timer]')!;
    const text = el.querySelector<HTMLElement>('[data-timer-text]')!;
    el.hidden = false;
    this.lastPoll = 0;
    const tick = () => {
      const s = this.session;
      if (!s) return;
      const now = Date.now();
      const end = Date.parse(s.expiresAt);
      // A sandbox nobody types into is removed sooner (the server's idle limit); say so when that comes first.
      const idle = this.idleEnd !== undefined && this.idleEnd < end;
      const left = Math.min(end, this.idleEnd ?? end) - now;
      text.textContent = left <= 0 ? 'ending…' : idle && left < 10 * 60_000 ? `idle: ends in ${fmt(left)}` : `${fmt(left)} left`;
      el.dataset.low = String(left < 10 * 60_000);
      // The server is the judge of expiry: ask it every minute, and often when the end is near.
      if (now - this.lastPoll > (left < 2 * 60_000 ? 10_000 : 60_000)) {
        this.lastPoll = now;
        S.fetchSession(s).then((v) => {
          s.expiresAt = v.expiresAt;
          this.idleEnd = Date.parse(v.idleExpiresAt) || undefined;
          S.saveSession(s);
        }, (err) => {
          if (err instanceof ApiFailure && err.sessionGone && this.session === s) this.expired();
        });
      }
    };
    tick();
    this.clock = setInterval(tick, 1000);
  }

  private async extend() {
    const s = this.session;
    if (!s) return;
    try {
      s.expiresAt = (await S.extendSession(s)).expiresAt;
      this.idleEnd = undefined; // extending counts as activity; the next poll brings the new idle limit
      this.lastPoll = 0;
      S.saveSession(s);
      this.flash(`Extended: the sandbox now runs until ${new Date(s.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`);
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) return this.expired();
      this.flash(`Could not extend: ${(err as Error).message}`);
    }
  }

  // ---- tabs ----

  private wire() {
    this.root.addEventListener('click', (e) => {
      const btn = (e.target as HTMLElement).closest<HTMLElement>('[data-action]');
      if (!btn || !this.root.contains(btn)) return;
      switch (btn.dataset.action) {
        case 'start': void this.ensureSession(); break;
        case 'extend': void this.extend(); break;
        case 'reset-sandbox': void this.resetSandbox(); break;
        case 'add-terminal': void this.addTerminal(); break;
        case 'add-node': void this.addNode(); break;
      }
    });
    this.tablist.addEventListener('click', (e) => {
      const tab = (e.target as HTMLElement).closest<HTMLElement>('[role=tab]');
      if (tab?.dataset.tab) this.select(tab.dataset.tab, true);
    });
    this.tablist.addEventListener('keydown', (e) => {
      const tabs = [...this.tablist.querySelectorAll<HTMLElement>('[role=tab]')];
      const i = tabs.indexOf(document.activeElement as HTMLElement);
      if (i < 0) return;
      const to = e.key === 'ArrowRight' ? (i + 1) % tabs.length : e.key === 'ArrowLeft' ? (i - 1 + tabs.length) % tabs.length
        : e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : -1;
      if (to < 0) return;
      e.preventDefault();
      tabs[to].focus();
      this.select(tabs[to].dataset.tab!);
    });
  }

  select(key: string, fromClick = false) {
    this.active = key;
    for (const tab of this.tablist.querySelectorAll<HTMLElement>('[role=tab]')) {
      const on = tab.dataset.tab === key;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    for (const p of this.panels.querySelectorAll<HTMLElement>('[data-panel]')) p.hidden = p.dataset.panel !== key;
    this.root.dataset.view = key === 'editor' ? 'editor' : 'terminal';
    if (key === 'editor') {
      void this.editorHandle(true)?.then((e) => e?.shown());
      return;
    }
    const t = this.terminals.get(key);
    if (t) {
      t.refit();
      if (fromClick) t.focus();
    }
  }

  /** Focus for the "skip to the terminal" link: the active terminal, else what the pane offers. */
  focusTerminal() {
    const t = this.terminals.get(this.active);
    if (t) return t.focus();
    this.root.querySelector<HTMLElement>('[data-overlay]:not([hidden]) button, [role=tab][aria-selected=true]')?.focus();
  }

  private editorHandle(load = false): Promise<EditorHandle | null> | undefined {
    if (!this.editor && load) {
      const panel = this.panelFor('editor');
      panel.querySelector('[data-editor-note]')!.textContent = 'Loading the editor…';
      this.editor = import('./editor.ts').then((m) => m.mountEditor(panel, {
        session: () => (this.state === 'ready' || this.state === 'reconnecting' ? this.session : null),
        ensureSession: () => this.ensureSession(),
      }), () => {
        this.editor = undefined;
        panel.querySelector('[data-editor-note]')!.textContent = 'The editor could not be loaded. Check your connection, then open this tab again.';
        return null;
      });
    }
    return this.editor;
  }

  private syncTabs() {
    const s = this.session;
    if (!s) return;
    const editorTab = this.tablist.querySelector('[data-tab=editor]')!;
    for (const key of s.tabs) {
      if (this.tablist.querySelector(`[data-tab="${key}"]`)) continue;
      const [node, tab] = key.split('/');
      const id = `${node}-${tab}`;
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'tab');
      b.id = `tab-${id}`;
      b.setAttribute('aria-controls', `panel-${id}`);
      b.setAttribute('aria-selected', 'false');
      b.tabIndex = -1;
      b.dataset.tab = key;
      b.textContent = tab === '1' ? node : `${node} (${tab})`;
      editorTab.before(b);
      const p = document.createElement('div');
      p.className = 'term-panel';
      p.setAttribute('role', 'tabpanel');
      p.id = `panel-${id}`;
      p.setAttribute('aria-labelledby', b.id);
      p.dataset.panel = key;
      p.hidden = true;
      p.innerHTML = '<div class="term-banner" data-banner hidden></div><div class="term-host" data-term-host></div>';
      this.panels.querySelector('[data-panel=editor]')!.before(p);
    }
    this.root.querySelector<HTMLElement>('[data-action=add-node]')!.hidden = false;
  }

  private async addTerminal() {
    if (!(await this.ensureSession()) || !this.session) return;
    const s = this.session;
    const node = this.active === 'editor' ? s.nodes[0] : this.active.split('/')[0];
    const used = s.tabs.filter((t) => t.startsWith(`${node}/`)).map((t) => Number(t.split('/')[1]) || 1);
    const key = `${node}/${Math.max(0, ...used) + 1}`;
    s.tabs.push(key);
    s.tabs.sort((a, b) => s.nodes.indexOf(a.split('/')[0]) - s.nodes.indexOf(b.split('/')[0]));
    S.saveSession(s);
    this.syncTabs();
    this.openTerminal(await this.lib!, key);
    this.select(key, true);
  }

  private async addNode() {
    if (!(await this.ensureSession()) || !this.session) return;
    const s = this.session;
    try {
      const { name } = await S.addNode(s);
      s.nodes.push(name);
      s.tabs.push(`${name}/1`);
      S.saveSession(s);
      this.syncTabs();
      this.openTerminal(await this.lib!, `${name}/1`);
      this.select(`${name}/1`, true);
      this.flash(`${name} added: another Docker engine, reachable from the others by its name.`);
    } catch (err) {
      this.flash(err instanceof ApiFailure && err.status === 404 && err.code === 'NOT_FOUND'
        ? 'This server cannot add nodes.' : `Could not add a node: ${(err as Error).message}`);
    }
  }

  // ---- what the pane shows ----

  private panelFor(key: string): HTMLElement {
    return this.panels.querySelector<HTMLElement>(`[data-panel="${key}"]`)!;
  }

  private setState(state: WbState, overlay?: { title: string; text: string; action?: Action }) {
    this.state = state;
    this.root.dataset.state = state;
    const ov = this.root.querySelector<HTMLElement>('[data-overlay]')!;
    const live = state === 'ready' || state === 'reconnecting';
    this.root.querySelector<HTMLElement>('[data-status-text]')!.textContent = STATUS[state];
    this.root.querySelector<HTMLButtonElement>('[data-action=extend]')!.hidden = !live;
    this.root.querySelector<HTMLButtonElement>('[data-action=reset-sandbox]')!.disabled = !(live || state === 'error');
    ov.hidden = live;
    ov.setAttribute('aria-busy', String(state === 'starting'));
    if (live) return;
    const title = ov.querySelector<HTMLElement>('[data-overlay-title]')!;
    const text = ov.querySelector<HTMLElement>('[data-overlay-text]')!;
    const actions = ov.querySelector<HTMLElement>('.wb-overlay-actions')!;
    if (state === 'idle') {
      title.textContent = 'Your sandbox';
      text.textContent = `A private Docker engine for this lesson${this.shape.nodes > 1 ? ` (${this.shape.nodes} nodes)` : ''}, ready in seconds. Nobody else can see it.`;
      overlay = { title: title.textContent, text: text.textContent, action: { label: 'Start sandbox', run: () => void this.ensureSession() } };
    }
    if (!overlay) return;
    title.textContent = overlay.title;
    text.textContent = overlay.text;
    actions.replaceChildren();
    if (state === 'starting') {
      const spin = document.createElement('span');
      spin.className = 'spinner';
      spin.setAttribute('aria-hidden', 'true');
      actions.append(spin);
    }
    if (overlay.action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'primary';
      b.textContent = overlay.action.label;
      const run = overlay.action.run;
      b.addEventListener('click', () => run());
      actions.append(b);
      // Keep keyboard users where the action is when the pane changes under their focus.
      if (ov.contains(document.activeElement) || document.activeElement === document.body) b.focus({ preventScroll: true });
    }
  }

  private banner(el: HTMLElement, text: string | null, action?: Action) {
    el.hidden = text === null;
    el.replaceChildren();
    if (text === null) return;
    const span = document.createElement('span');
    span.textContent = text;
    el.append(span);
    if (action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = action.label;
      b.addEventListener('click', action.run);
      el.append(b);
    }
  }

  /** A passing message in the status line (announced politely), then back to the state. */
  private flash(text: string) {
    const el = this.root.querySelector<HTMLElement>('[data-status-text]')!;
    el.textContent = text;
    setTimeout(() => { if (el.textContent === text) el.textContent = STATUS[this.state]; }, 6000);
  }
}

function fmt(ms: number) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

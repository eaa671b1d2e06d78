// The workbench: the session's life (idle → starting → ready ⇄ reconnecting → expired / error), its
// terminal tabs, the lazily loaded editor, the timer and the ports bar. The pane always says what is
// going on and what the learner can do next; it is never blank.
import { ApiFailure } from './api.ts';
import { call, routePath, type Body } from './client.ts';
import { confirmDialog } from './dialog.ts';
import { openFeed } from './live.ts';
import { PortsBar } from './ports.ts';
import type { LessonShape } from './progress.ts';
import * as S from './session.ts';
import { TerminalTab, type TermState } from './terminal.ts';
import { currentTheme, onThemeChange } from './theme.ts';
import { WorkshopView, type WorkshopInfo } from './workshop-view.ts';
import { readJson, writeJson } from './storage.ts';

export type WbState = 'idle' | 'starting' | 'ready' | 'reconnecting' | 'expired' | 'error';
type Lib = typeof import('./xterm-lib.ts');
type Action = { label: string; run: () => void; secondary?: boolean };
type EditorHandle = { shown: () => void; sessionChanged: () => void };

const STATUS: Record<WbState, string> = {
  idle: 'No sandbox yet',
  starting: 'Starting…',
  ready: 'Ready',
  reconnecting: 'Reconnecting…',
  expired: 'Sandbox ended',
  error: 'Problem',
};
const READY_TIMEOUT_MS = 60_000;
/** The idle limit is shown only when it is this close and comes before the time limit. */
const IDLE_WARN_MS = 5 * 60_000;
const SR_KEY = 'berth.screen-reader';

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
  private feed: ReturnType<typeof openFeed> | undefined;
  private screenReader = readJson(SR_KEY, (v) => (typeof v === 'boolean' ? v : null)) ?? false;
  /** The learner's workshop as the server last described it (lesson header, ended screen, banners). */
  readonly workshop: WorkshopView;
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
    this.workshop = new WorkshopView(root);
    this.wire();
    onThemeChange((t) => {
      for (const term of this.terminals.values()) term.setTheme(t);
    });
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
      throw new ApiFailure(
        409,
        'NO_SANDBOX',
        this.state === 'starting' ? 'The sandbox is still starting. Check again in a moment.' : 'Start the sandbox first, then do the step.',
      );
    }
    try {
      return await S.runCheck(this.session, checkId);
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) this.ended(err);
      throw err;
    }
  }

  /** Tells a workshop's instructor about progress; a session outside a workshop sends nothing. */
  reportProgress(body: Omit<Body<'POST /api/sessions/:id/progress'>, 'lesson'>) {
    const s = this.session;
    if (!s?.workshop) return;
    void fetch(routePath('POST /api/sessions/:id/progress', { params: { id: s.id } }), {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ lesson: this.shape.id, ...body }),
    }).catch(() => {
      /* the local copy is the learner's record */
    });
  }

  async resetSandbox(ask = true) {
    if (
      ask &&
      !(await confirmDialog({
        title: 'Reset the sandbox?',
        text: 'Everything in it (containers, images, volumes, files) is removed and a fresh sandbox starts. Your progress in the lesson is kept.',
        ok: 'Reset sandbox',
      }))
    )
      return;
    const s = this.session;
    this.teardown();
    // A workshop's sandbox is rebuilt in place (same session and token): the learner stays in the workshop.
    if (s?.workshop) {
      const reset = async () => {
        this.setState('starting', { title: 'Resetting your sandbox…', text: 'A fresh Docker engine replaces the old one.' });
        try {
          await S.resetWorkshopSandbox(s);
        } catch (err) {
          this.fail(err, () => void this.run(reset));
          return false;
        }
        return this.attach(s, true);
      };
      await this.run(reset);
      return;
    }
    S.forgetSession(this.shape.id);
    if (s)
      await S.deleteSession(s).catch(() => {
        /* already gone, or the server is down: start() reports that */
      });
    await this.run(() => this.start());
  }

  // ---- life cycle ----

  private run(f: () => Promise<boolean>): Promise<boolean> {
    const p = f().finally(() => {
      if (this.busy === p) this.busy = undefined;
    });
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
        if (err instanceof ApiFailure && err.sessionGone) {
          S.forgetSession(this.shape.id);
          this.ended(err);
          return false;
        }
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
      this.fail(
        new ApiFailure(0, 'NETWORK', 'The terminal could not be loaded. Check your connection and try again.'),
        () => void this.run(() => this.attach(s, true)),
      );
      return false;
    }
    this.syncTabs();
    const ready = new Promise<boolean>((ok) => {
      this.firstReady = ok;
    });
    for (const key of s.tabs) this.openTerminal(lib, key);
    this.select(this.terminals.has(this.active) ? this.active : s.tabs[0]);
    const timeout = setTimeout(() => this.firstReady?.(false), READY_TIMEOUT_MS);
    const ok = await ready;
    clearTimeout(timeout);
    if (this.session !== s) return false;
    if (!ok) {
      if (this.state === 'starting')
        this.fail(new ApiFailure(504, 'TERMINAL_TIMEOUT', 'The terminal did not answer in time.'), () => void this.run(() => this.attach(s, true)));
      return false;
    }
    this.readyAfterMs ??= performance.now() - this.startedAt;
    this.setState('ready');
    this.ports.start(s);
    this.startFeed(s);
    this.startClock();
    void this.editorHandle()?.then((e) => e?.sessionChanged());
    return true;
  }

  private openTerminal(lib: Lib, key: string) {
    if (this.terminals.has(key)) return;
    const panel = this.panelFor(key);
    const [node, tab] = key.split('/');
    const t = new TerminalTab(lib, {
      host: panel.querySelector<HTMLElement>('[data-term-host]')!,
      node,
      tab,
      theme: currentTheme(),
      session: () => this.session,
      onState: (term, st) => this.onTerminal(term, st),
      screenReader: this.screenReader,
      onInput: () => {
        this.lastInput = Date.now();
      },
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
        if (st.kind === 'gone' && st.lost) this.expired(st.lost, st.maintenance ? 'maintenance' : 'lost');
        else this.expired();
        break;
      case 'failed':
        this.banner(banner, st.message, { label: 'Try again', run: () => t.connect() });
        if (this.state === 'starting') {
          this.firstReady?.(false);
          this.firstReady = undefined;
        }
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
      if (err instanceof ApiFailure && err.sessionGone) return this.ended(err);
      if (err instanceof ApiFailure && err.unreachable) {
        this.banner(banner, `Cannot reach the Berth server. Retrying in ${secs} s; your sandbox is kept.`, { label: 'Retry now', run: () => t.retryNow() });
      }
    } finally {
      this.probing = false;
    }
  }

  /** The session is gone: ended, lost with its machine, or ended for its machine's maintenance (the server's message says so). */
  private ended(err: ApiFailure) {
    if (err.machineLost) this.expired(err.message, 'lost');
    else if (err.machineMaintenance) this.expired(err.message, 'maintenance');
    else this.expired();
  }

  /**
   * The banner before a planned maintenance of the sandbox's machine (the server pushes `maintenance` and the
   * session carries `maintenanceAt`): when it goes down and what to do. Null hides it.
   */
  private maintenanceBanner(at: string | null | undefined) {
    const el = this.root.querySelector<HTMLElement>('[data-maintenance]')!;
    const when = at ? new Date(at) : null;
    el.hidden = !when;
    el.textContent = when
      ? `This machine goes down for maintenance at ${when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}: save your work (the Editor tab downloads the workspace); a new sandbox starts elsewhere.`
      : '';
  }

  /** why: lost (its machine went away) or maintenance (its machine was drained): the server's words are `text`. */
  private expired(
    text = 'It reached its time limit, was idle too long, or was removed. Your progress in this lesson is kept.',
    why: 'ended' | 'lost' | 'maintenance' = 'ended',
  ) {
    const lost = why !== 'ended';
    const s = this.session ?? S.loadSession(this.shape.id);
    this.teardown();
    S.forgetSession(this.shape.id);
    // A lost sandbox is deleted on the server too (what its machine still holds is removed when it comes back);
    // a workshop's stays, so the instructor sees who was affected, until its learner rejoins.
    if (lost && s && !s.workshop)
      void S.deleteSession(s).catch(() => {
        /* the server removes it at its end anyway */
      });
    const privateStart = (label: string, secondary = false): Action => ({ label, secondary, run: () => void this.run(() => this.start()) });
    if (!s?.workshop) {
      this.setState('expired', {
        title:
          why === 'maintenance'
            ? "Your sandbox's machine was taken down for maintenance"
            : lost
              ? 'The machine running your sandbox went away'
              : 'Your sandbox has ended',
        text,
        actions: [privateStart('Start a new sandbox')],
      });
      return;
    }
    // A workshop's sandbox: the way forward is the workshop, never a private sandbox the instructor cannot see.
    void this.workshop.refresh(s).then((w) => {
      if (this.state !== 'expired' || this.session) return;
      const back: Action = {
        label: w.state === 'ended' ? 'Back to the workshop page' : 'Rejoin the workshop',
        run: () => location.assign(this.workshop.joinUrl(s)),
      };
      const own = privateStart('Practise on my own (not part of the workshop)', true);
      if (w.state === 'ended') {
        this.setState('expired', {
          title: 'The workshop has ended',
          text: `${w.title ? `“${w.title}”` : 'Your workshop'} is over and its sandboxes were removed. Your progress in this lesson is kept in this browser.`,
          actions: [back, own],
        });
      } else {
        this.setState('expired', {
          title:
            why === 'maintenance'
              ? "Your workshop sandbox's machine was taken down for maintenance"
              : lost
                ? 'The machine running your workshop sandbox went away'
                : 'Your workshop sandbox was removed',
          text: `${w.title ? `“${w.title}”` : 'Your workshop'} is still running. Rejoin with the same name from this browser to get a new sandbox; your results stay with the instructor.`,
          actions: [back, own],
        });
      }
    });
    this.setState('expired', { title: 'Your workshop sandbox has ended', text: 'Finding out whether the workshop is still running…', actions: [] });
  }

  private fail(err: unknown, retry: () => void) {
    const e = err instanceof ApiFailure ? err : new ApiFailure(0, 'INTERNAL', (err as Error).message);
    const title = e.unreachable
      ? 'Cannot reach the Berth server'
      : e.code === 'RATE_LIMITED'
        ? 'Too many new sandboxes'
        : e.code === 'OUT_OF_CAPACITY'
          ? 'No room for another sandbox'
          : 'The sandbox could not start';
    const text = `${e.message}${e.requestId ? ` (request ${e.requestId})` : ''}`;
    this.setState('error', { title, text, actions: [{ label: 'Try again', run: retry }] });
  }

  private teardown() {
    this.feed?.close();
    this.feed = undefined;
    this.workshop.watch(null);
    this.maintenanceBanner(null);
    for (const t of this.terminals.values()) t.dispose();
    this.terminals.clear();
    this.session = null;
    this.ports.stop();
    clearInterval(this.clock);
    this.root.querySelector<HTMLElement>('[data-timer]')!.hidden = true;
    void this.editorHandle()?.then((e) => e?.sessionChanged());
  }

  // ---- pushed updates ----

  private startFeed(s: S.Session) {
    this.feed?.close();
    const seen = () => (s.workshop ? this.workshop.lastSeen(s) : 0);
    this.feed = openFeed(s, seen, {
      on: (event, data) => {
        if (this.session !== s) return;
        const d = data as Record<string, unknown>;
        if (event === 'hello') this.ports.setPushed(d.ports === 'push');
        else if (event === 'ports') this.ports.push((d.ports ?? []) as S.Port[]);
        else if (event === 'workshop') {
          const info = d as unknown as WorkshopInfo;
          this.workshop.show(s, info);
          if (info.workshop.code && s.workshopCode !== info.workshop.code) {
            s.workshopCode = info.workshop.code;
            S.saveSession(s);
          }
        } else if (event === 'message') this.workshop.message(s, d as { id: number; text: string; at: string });
        else if (event === 'watch') this.workshop.watch(d as { watching: boolean; takeover: boolean; by: string[] });
        else if (event === 'maintenance') this.maintenanceBanner(typeof d.at === 'string' ? d.at : null);
      },
      gone: () => {
        if (this.session !== s) return;
        S.fetchSession(s).catch((err) => {
          if (err instanceof ApiFailure && err.sessionGone && this.session === s) this.ended(err);
        });
      },
      up: (on) => {
        if (!on) this.ports.setPushed(false);
      },
    });
  }

  // ---- timer ----

  private lastInput = 0;

  /** One timer that says which limit it counts: the workshop's end, the time limit, or (when near) the idle limit. */
  private startClock() {
    clearInterval(this.clock);
    const el = this.root.querySelector<HTMLElement>('[data-timer]')!;
    const label = el.querySelector<HTMLElement>('[data-timer-label]')!;
    const text = el.querySelector<HTMLElement>('[data-timer-text]')!;
    el.hidden = false;
    this.lastPoll = 0;
    const tick = () => {
      const s = this.session;
      if (!s) return;
      const now = Date.now();
      const end = Date.parse(s.expiresAt);
      // Typing moves the idle limit on the server; until the next answer, assume it moved.
      const idleEnd = this.idleEnd !== undefined && this.lastInput > this.lastPoll ? undefined : this.idleEnd;
      const idle = !s.workshop && idleEnd !== undefined && idleEnd < end && idleEnd - now < IDLE_WARN_MS;
      const left = (idle ? idleEnd! : end) - now;
      label.textContent = s.workshop ? 'Workshop ends in' : idle ? 'Idle limit: ends in' : 'Time limit:';
      text.textContent = left <= 0 ? 'ending…' : idle ? `${fmt(left)} unless you type` : s.workshop ? fmt(left) : `${fmt(left)} left`;
      el.dataset.low = String(left < (idle ? IDLE_WARN_MS : 10 * 60_000));
      el.dataset.limit = s.workshop ? 'workshop' : idle ? 'idle' : 'lifetime';
      // The server is the judge of expiry: ask it every minute, and often when an end is near.
      if (now - this.lastPoll > (left < 2 * 60_000 ? 10_000 : 60_000) || (idle && this.lastInput > this.lastPoll)) {
        this.lastPoll = now;
        S.fetchSession(s).then(
          (v) => {
            s.expiresAt = v.expiresAt;
            this.idleEnd = v.idleExpiresAt ? Date.parse(v.idleExpiresAt) : undefined;
            this.maintenanceBanner(v.maintenanceAt);
            S.saveSession(s);
          },
          (err) => {
            if (err instanceof ApiFailure && err.sessionGone && this.session === s) this.ended(err);
          },
        );
      }
    };
    tick();
    this.clock = setInterval(tick, 1000);
  }

  private async extend() {
    const s = this.session;
    if (!s) return;
    try {
      const v = await S.extendSession(s);
      s.expiresAt = v.expiresAt;
      // The answer carries both limits, so the timer shows the new end at once and stays there.
      this.idleEnd = v.idleExpiresAt ? Date.parse(v.idleExpiresAt) : undefined;
      this.lastPoll = Date.now();
      S.saveSession(s);
      this.flash(`Extended: the time limit is now ${new Date(s.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`);
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) return this.ended(err);
      this.flash(`Could not extend: ${(err as Error).message}`);
    }
  }

  /** Ends the sandbox for good (the lesson's progress stays): nothing keeps running until it times out. */
  private async endSandbox() {
    const s = this.session;
    if (
      !s ||
      !(await confirmDialog({
        title: 'End this sandbox?',
        text: 'Its containers, images, volumes and files are removed now. Your progress in the lesson is kept, and you can start a new sandbox later.',
        ok: 'End sandbox',
      }))
    )
      return;
    this.teardown();
    S.forgetSession(this.shape.id);
    try {
      await S.deleteSession(s);
    } catch (err) {
      if (!(err instanceof ApiFailure && err.sessionGone)) this.flash(`The server did not confirm the removal: ${(err as Error).message}`);
    }
    this.setState('expired', {
      title: 'Sandbox ended',
      text: 'You ended it. Your progress in this lesson is kept.',
      actions: [{ label: 'Start a new sandbox', run: () => void this.run(() => this.start()) }],
    });
  }

  get screenReaderOn() {
    return this.screenReader;
  }

  setScreenReader(on: boolean) {
    this.screenReader = on;
    writeJson(SR_KEY, on);
    for (const t of this.terminals.values()) t.setScreenReader(on);
  }

  // ---- tabs ----

  private wire() {
    this.root.addEventListener('click', (e) => {
      const btn = (e.target as HTMLElement).closest<HTMLElement>('[data-action]');
      if (!btn || !this.root.contains(btn)) return;
      const actions: Record<string, () => Promise<unknown>> = {
        start: () => this.ensureSession(),
        extend: () => this.extend(),
        'end-sandbox': () => this.endSandbox(),
        'close-tab': () => this.closeTab(),
        'remove-node': () => this.removeNode(),
        'reset-sandbox': () => this.resetSandbox(),
        'add-terminal': () => this.addTerminal(),
        'add-node': () => this.addNode(),
      };
      void actions[btn.dataset.action ?? '']?.();
    });
    this.tablist.addEventListener('click', (e) => {
      const tab = (e.target as HTMLElement).closest<HTMLElement>('[role=tab]');
      if (tab?.dataset.tab) this.select(tab.dataset.tab, true);
    });
    this.tablist.addEventListener('keydown', (e) => {
      const tabs = [...this.tablist.querySelectorAll<HTMLElement>('[role=tab]')];
      const i = tabs.indexOf(document.activeElement as HTMLElement);
      if (i < 0) return;
      const to =
        e.key === 'ArrowRight'
          ? (i + 1) % tabs.length
          : e.key === 'ArrowLeft'
            ? (i - 1 + tabs.length) % tabs.length
            : e.key === 'Home'
              ? 0
              : e.key === 'End'
                ? tabs.length - 1
                : -1;
      if (e.key === 'Delete' && this.closable(tabs[i].dataset.tab!)) {
        e.preventDefault();
        void this.closeTab(tabs[i].dataset.tab);
        return;
      }
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
    this.syncControls();
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
      this.editor = import('./editor.ts').then(
        (m) =>
          m.mountEditor(panel, {
            session: () => (this.state === 'ready' || this.state === 'reconnecting' ? this.session : null),
            ensureSession: () => this.ensureSession(),
          }),
        () => {
          this.editor = undefined;
          panel.querySelector('[data-editor-note]')!.textContent = 'The editor could not be loaded. Check your connection, then open this tab again.';
          return null;
        },
      );
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
    this.syncControls();
  }

  /** A tab may be closed when its node keeps another one (every node keeps at least its first shell). */
  private closable(key: string) {
    const s = this.session;
    if (!s || key === 'editor' || !(this.state === 'ready' || this.state === 'reconnecting')) return false;
    const node = key.split('/')[0];
    return s.tabs.filter((t) => t.startsWith(`${node}/`)).length > 1;
  }

  /** Nodes added with "+ Node" (beyond the lesson's own) can be removed again. */
  private removable(node: string) {
    const s = this.session;
    return !!s && (this.state === 'ready' || this.state === 'reconnecting') && s.nodes.length > this.shape.nodes && s.nodes.indexOf(node) >= this.shape.nodes;
  }

  /** Buttons follow what can be done now: nothing acts on a sandbox that has ended. */
  private syncControls() {
    const live = this.state === 'ready' || this.state === 'reconnecting';
    const canStart = this.state === 'idle';
    const q = (a: string) => this.root.querySelector<HTMLButtonElement>(`[data-action=${a}]`)!;
    q('add-terminal').disabled = !(live || canStart);
    if (!this.addingNode) q('add-node').disabled = !live;
    const active = this.active === 'editor' ? '' : this.active;
    const close = q('close-tab');
    close.hidden = !active || !this.closable(active);
    if (!close.hidden) close.setAttribute('aria-label', `Close terminal ${this.tabLabel(active)}`);
    const node = active.split('/')[0];
    const remove = q('remove-node');
    remove.hidden = !active || !this.removable(node);
    if (!remove.hidden) {
      remove.textContent = `Remove ${node}`;
      remove.setAttribute('aria-label', `Remove ${node} from this sandbox`);
    }
    q('end-sandbox').disabled = !live || !!this.session?.workshop;
    q('end-sandbox').hidden = !!this.session?.workshop;
  }

  private tabLabel(key: string) {
    const [node, tab] = key.split('/');
    return tab === '1' ? node : `${node} (${tab})`;
  }

  private dropTab(key: string) {
    const s = this.session;
    this.terminals.get(key)?.dispose();
    this.terminals.delete(key);
    this.tablist.querySelector(`[data-tab="${key}"]`)?.remove();
    this.panelFor(key)?.remove();
    if (s) {
      s.tabs = s.tabs.filter((t) => t !== key);
      S.saveSession(s);
    }
  }

  private async closeTab(key = this.active) {
    const s = this.session;
    if (!s || !this.closable(key)) return;
    const label = this.tabLabel(key);
    if (
      !(await confirmDialog({
        title: `Close terminal ${label}?`,
        text: 'The shell in it ends, and whatever runs in that shell stops. Containers you started keep running.',
        ok: 'Close terminal',
      }))
    )
      return;
    const [node, tab] = key.split('/');
    const i = s.tabs.indexOf(key);
    this.dropTab(key);
    this.select(s.tabs[Math.max(0, i - 1)] ?? s.tabs[0], true);
    // The shell is held by dtach so that reloads reattach; closing the tab ends it for good.
    await call('POST /api/sessions/:id/exec', {
      params: { id: s.id },
      token: s.token,
      body: { node, cmd: `pkill -HUP -f '^dtach -n /tmp/.berth-tab-${tab} ' ; rm -f /tmp/.berth-tab-${tab}; true`, timeoutMs: 5000 },
    }).catch(() => {
      /* the sandbox may be gone already: nothing left to end */
    });
    this.flash(`Closed terminal ${label}.`);
  }

  private async removeNode() {
    const s = this.session;
    const node = this.active === 'editor' ? '' : this.active.split('/')[0];
    if (!s || !node || !this.removable(node)) return;
    if (
      !(await confirmDialog({
        title: `Remove ${node}?`,
        text: `${node}'s Docker engine is removed with its containers, images and files. The other nodes keep running.`,
        ok: `Remove ${node}`,
      }))
    )
      return;
    try {
      await call('DELETE /api/sessions/:id/nodes/:node', { params: { id: s.id, node }, token: s.token });
    } catch (err) {
      if (err instanceof ApiFailure && err.sessionGone) return this.ended(err);
      return this.flash(`Could not remove ${node}: ${(err as Error).message}`);
    }
    for (const key of s.tabs.filter((t) => t.startsWith(`${node}/`))) this.dropTab(key);
    s.nodes = s.nodes.filter((n) => n !== node);
    S.saveSession(s);
    this.select(s.tabs[0], true);
    this.feed?.restart();
    this.flash(`${node} removed.`);
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

  private addingNode = false;

  private async addNode() {
    if (this.addingNode || !(await this.ensureSession()) || !this.session) return;
    const s = this.session;
    const button = this.root.querySelector<HTMLButtonElement>('[data-action=add-node]')!;
    // A node takes a few seconds: say so on the button and in the status line until it is there.
    this.addingNode = true;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    button.textContent = 'Adding node…';
    this.flash('Adding a node: a new Docker engine starts in a few seconds…', 60_000);
    try {
      const { name } = await S.addNode(s);
      if (this.session !== s) return;
      s.nodes.push(name);
      s.tabs.push(`${name}/1`);
      S.saveSession(s);
      this.syncTabs();
      this.openTerminal(await this.lib!, `${name}/1`);
      this.select(`${name}/1`, true);
      this.feed?.restart();
      this.flash(`${name} added: another Docker engine, reachable from the others by its name.`);
    } catch (err) {
      this.flash(
        err instanceof ApiFailure && err.status === 404 && err.code === 'NOT_FOUND'
          ? 'This server cannot add nodes.'
          : `Could not add a node: ${(err as Error).message}`,
      );
    } finally {
      this.addingNode = false;
      button.removeAttribute('aria-busy');
      button.textContent = '+ Node';
      this.syncControls();
    }
  }

  // ---- what the pane shows ----

  private panelFor(key: string): HTMLElement {
    // Keys are node/tab names the page made itself (checked when loaded from storage).
    return this.panels.querySelector<HTMLElement>(`[data-panel="${key}"]`)!;
  }

  private setState(state: WbState, overlay?: { title: string; text: string; actions?: Action[] }) {
    this.state = state;
    this.root.dataset.state = state;
    const ov = this.root.querySelector<HTMLElement>('[data-overlay]')!;
    const live = state === 'ready' || state === 'reconnecting';
    this.root.querySelector<HTMLElement>('[data-status-text]')!.textContent = STATUS[state];
    // A workshop's sandbox lasts as long as the workshop: only the instructor moves that end.
    this.root.querySelector<HTMLButtonElement>('[data-action=extend]')!.hidden = !live || !!this.session?.workshop;
    this.root.querySelector<HTMLButtonElement>('[data-action=reset-sandbox]')!.disabled = !(live || state === 'error');
    ov.hidden = live;
    ov.setAttribute('aria-busy', String(state === 'starting'));
    this.syncControls();
    if (live) return;
    const title = ov.querySelector<HTMLElement>('[data-overlay-title]')!;
    const text = ov.querySelector<HTMLElement>('[data-overlay-text]')!;
    const actions = ov.querySelector<HTMLElement>('.wb-overlay-actions')!;
    if (state === 'idle') {
      title.textContent = 'Your sandbox';
      text.textContent = `A private Docker engine for this lesson${this.shape.nodes > 1 ? ` (${this.shape.nodes} nodes)` : ''}, ready in seconds. Nobody else can see it.`;
      overlay = { title: title.textContent, text: text.textContent, actions: [{ label: 'Start sandbox', run: () => void this.ensureSession() }] };
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
    const hadFocus = ov.contains(document.activeElement);
    for (const a of overlay.actions ?? []) {
      const b = document.createElement('button');
      b.type = 'button';
      if (!a.secondary) b.className = 'primary';
      b.textContent = a.label;
      b.addEventListener('click', () => a.run());
      actions.append(b);
      // Keep keyboard users where the action is when the pane changes under their focus; on page load
      // the focus stays at the top (skip links, then the heading), not here.
      if (hadFocus && b.className === 'primary') b.focus({ preventScroll: true });
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
  private flash(text: string, ms = 6000) {
    const el = this.root.querySelector<HTMLElement>('[data-status-text]')!;
    el.textContent = text;
    setTimeout(() => {
      if (el.textContent === text) el.textContent = STATUS[this.state];
    }, ms);
  }
}

function fmt(ms: number) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

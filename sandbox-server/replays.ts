// Skip to a step: replays the reference commands of a lesson's earlier steps on a session's sandbox, in the
// background, and keeps the progress for the page (or an instructor) to poll. One replay per session at a
// time; the last one's outcome is kept until the session goes or another replay starts.
import { replay, type PlannedStep } from '../lessons/lib/replay.ts';
import { ApiError } from './errors.ts';
import type { LessonCatalog } from './lesson-catalog.ts';
import type { ExecResult } from './engine/exec.ts';
import type { SessionRow } from './store.ts';

export type ReplayStepView = { id: string; title: string; state: 'pending' | 'running' | 'done' | 'failed'; ms?: number };
export type ReplayView = {
  lesson: string;
  /** The step the sandbox is being brought to the start of. */
  step: string;
  state: 'running' | 'done' | 'failed';
  steps: ReplayStepView[];
  startedAt: string;
  ms?: number;
  /** Which step failed and how (the failing command's exit status and last lines of output). */
  failedAt?: string;
  problem?: string;
};

export type ReplayDeps = {
  lessons: LessonCatalog;
  exec: (s: SessionRow, cmd: string, node: string, timeoutMs: number) => Promise<ExecResult>;
  log: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void };
  /** Per command; a lesson's slowest step (WordPress's first start) stays well inside it. */
  commandTimeoutMs?: number;
};

export class Replays {
  private readonly views = new Map<string, ReplayView>();
  private readonly deps: ReplayDeps;
  constructor(deps: ReplayDeps) {
    this.deps = deps;
  }

  /** Starts replaying to `step` and returns at once with the initial view. */
  start(s: SessionRow, lesson: string, step: string): ReplayView {
    const { nodes, steps } = this.deps.lessons.replayPlan(lesson, step);
    if (this.views.get(s.id)?.state === 'running')
      throw new ApiError(409, 'REPLAY_RUNNING', 'A replay is already running in this sandbox. Wait for it to finish.');
    const missing = Array.from({ length: nodes }, (_, i) => `node${i + 1}`).filter((n) => !s.nodes.includes(n));
    if (missing.length)
      throw new ApiError(409, 'NODES_MISSING', `This lesson needs ${missing.join(', ')}; add the node (or start a sandbox for the lesson) first.`);
    const view: ReplayView = {
      lesson,
      step,
      state: 'running',
      startedAt: new Date().toISOString(),
      steps: steps.map((p) => ({ id: p.id, title: p.title, state: 'pending' })),
    };
    this.views.set(s.id, view);
    void this.run(s, view, steps);
    return structuredClone(view);
  }

  view(sessionId: string): ReplayView {
    const v = this.views.get(sessionId);
    if (!v) throw new ApiError(404, 'REPLAY_NOT_FOUND', 'No replay has run in this sandbox.');
    return structuredClone(v);
  }

  forget(sessionId: string) {
    this.views.delete(sessionId);
  }

  private async run(s: SessionRow, view: ReplayView, plan: PlannedStep[]) {
    const exec = async (node: string, script: string, timeoutMs: number) => {
      try {
        return await this.deps.exec(s, script, node, timeoutMs);
      } catch (err) {
        // A timeout or a vanished sandbox fails the step with a message instead of ending the replay silently.
        return { exitCode: -1, stdout: '', stderr: err instanceof ApiError ? err.message : 'the command could not run' };
      }
    };
    try {
      const r = await replay(plan, exec, {
        timeoutMs: this.deps.commandTimeoutMs ?? 300_000,
        onEvent: (e) => {
          const st = view.steps[e.index];
          st.state = e.type === 'step-start' ? 'running' : e.type === 'step-done' ? 'done' : 'failed';
          if (e.type !== 'step-start') st.ms = Math.round(e.ms);
        },
      });
      view.ms = Math.round(r.ms);
      view.state = r.ok ? 'done' : 'failed';
      if (!r.ok) {
        view.failedAt = r.failedAt;
        view.problem = r.problem;
      }
      this.deps.log.info({ session: s.id, lesson: view.lesson, step: view.step, ms: view.ms, ok: r.ok, failedAt: r.failedAt }, 'replay finished');
    } catch (err) {
      // replay() only throws on a bug (a missing solution file read at plan time cannot get here).
      view.state = 'failed';
      view.problem = 'The replay stopped unexpectedly. It has been logged.';
      this.deps.log.warn({ err, session: s.id }, 'replay crashed');
    }
  }
}

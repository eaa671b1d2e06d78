// Lesson verification: every lesson runs step by step on a real sandbox; each check must fail before
// its step and pass after it, every fake of it (lessons/<id>/fakes/) must fail it on the state before
// the step, every command must succeed unless marked `# fails`, and each exercise's solution must pass.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatReport, loadLessons, verifyLesson, type LessonReport } from '../../lessons/lib/index.ts';
import { createSession, startServer, type TestServer } from '../helpers/server.ts';

const dir = join(import.meta.dirname, '..', '..', 'lessons');
// BERTH_VERIFY_ONLY=03,14 verifies just the lessons whose ids start with those prefixes (while writing one).
const only = process.env.BERTH_VERIFY_ONLY?.split(',').map((x) => x.trim()).filter(Boolean);
// BERTH_VERIFY_FAKES=0 leaves the fakes out (to time the lessons alone).
const skipFakes = process.env.BERTH_VERIFY_FAKES === '0';
const lessons = loadLessons(dir).lessons.filter((l) => !only || only.some((p) => l.id.startsWith(p)));
const reports: LessonReport[] = [];
let s: TestServer;
// Two lessons at a time: each holds a sandbox (or several nodes) on a two-core machine
// (BERTH_VERIFY_SLOTS changes it, for timing runs).
let slots = Number(process.env.BERTH_VERIFY_SLOTS ?? 2);
const waiting: (() => void)[] = [];
async function slot<T>(f: () => Promise<T>): Promise<T> {
  while (slots === 0) await new Promise<void>((r) => waiting.push(r));
  slots--;
  try { return await f(); } finally { slots++; waiting.shift()?.(); }
}

test.before(async () => { s = await startServer({ BERTH_LESSONS_DIR: dir }); });
test.after.always(async () => {
  await s?.stop();
  mkdirSync(join(import.meta.dirname, '..', 'artifacts'), { recursive: true });
  writeFileSync(join(import.meta.dirname, '..', 'artifacts', 'lesson-report.md'), formatReport(reports) + '\n');
});

test('there are lessons to verify', (t) => { t.true(lessons.length > 0); });

for (const lesson of lessons) {
  test(`lesson ${lesson.id} verifies on a real sandbox`, (t) => {
    // A lesson with its fakes can take longer than AVA's 5-minute quiet period on a loaded machine; this
    // per-test limit (which also holds off the global one) still ends a lesson that hangs.
    t.timeout(30 * 60_000); // holds off AVA's quiet-period limit while the lesson waits for a slot
    return slot(async () => {
      t.timeout(30 * 60_000); // and restarts when the lesson starts, so waiting does not count
    const c = await createSession(s, { lesson: lesson.id, nodes: lesson.nodes });
    try {
      const report = await verifyLesson(lesson, dir, async (node, script, timeoutMs) => {
        const r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd: script, node, timeoutMs: Math.min(timeoutMs, 600_000) } });
        if (r.status === 408) return { exitCode: 124, stdout: '', stderr: 'timed out' };
        if (r.status !== 200) throw new Error(`exec failed: ${r.status} ${await r.text()}`);
        return (await r.json()) as { exitCode: number; stdout: string; stderr: string };
      }, { skipFakes });
      reports.push(report);
      t.log(formatReport([report]));
      for (const st of report.steps) t.true(st.ok, `${lesson.id} › ${st.step}: ${st.problem ?? ''}`);
    } finally {
      await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
    }
    });
  });
}

// A workshop's results as CSV, one row per learner, for a spreadsheet.
import type { Workshop } from './db.ts';
import type { WorkshopService } from './service.ts';

/** Quotes every field; a leading = + - @ is defused so that a learner's name cannot become a formula. */
export function csvField(v: string | number | boolean | null): string {
  let s = v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

export const HEADER = [
  'name',
  'joined_at',
  'lesson',
  'step',
  'checks_passed',
  'checks_verified',
  'checks',
  'quiz_answered',
  'quiz_correct',
  'quiz',
  'last_progress_at',
  'last_activity_at',
  'sandbox',
];

export function resultsCsv(svc: WorkshopService, w: Workshop): string {
  const lines = [HEADER.map(csvField).join(',')];
  for (const r of svc.rows(w)) {
    const checks = svc.db.checks(r.id).filter((c) => c.passed);
    const quiz = svc.db.quiz(r.id);
    lines.push(
      [
        r.name,
        r.joinedAt,
        r.lesson,
        r.step,
        r.checksPassed,
        r.checksVerified,
        checks.map((c) => `${c.lesson}/${c.checkId}${c.verified ? '' : ' (reported)'}`).join('; '),
        quiz.length,
        quiz.filter((q) => q.correct === true).length,
        quiz.map((q) => `${q.lesson}/${q.question}=${q.answer}${q.correct === null ? '' : q.correct ? ' (right)' : ' (wrong)'}`).join('; '),
        r.lastProgressAt,
        r.lastActivityAt,
        r.sandbox,
      ]
        .map(csvField)
        .join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

// A learner's progress per lesson (steps done, checks passed, quiz answers), kept in localStorage so
// it survives reloads and new sandboxes. Pure functions plus two storage calls.
import { isRecord, readJson, removeKey, writeJson } from './storage.ts';

export type QuizAnswer = { answer: number[]; correct: boolean };
export type LessonProgress = {
  steps: Record<string, boolean>;
  checks: Record<string, boolean>;
  quizzes: Record<string, QuizAnswer>;
  updatedAt: string;
};
export type LessonShape = {
  id: string;
  title: string;
  nodes: number;
  steps: { id: string; title: string; checks: string[]; quizzes: string[] }[];
};

const key = (lesson: string) => `berth.progress.${lesson}`;

export const emptyProgress = (): LessonProgress => ({ steps: {}, checks: {}, quizzes: {}, updatedAt: '' });

function parse(v: unknown): LessonProgress | null {
  if (!isRecord(v)) return null;
  const flags = (o: unknown) => Object.fromEntries(Object.entries(isRecord(o) ? o : {}).filter(([, x]) => typeof x === 'boolean')) as Record<string, boolean>;
  const quizzes: Record<string, QuizAnswer> = {};
  for (const [id, q] of Object.entries(isRecord(v.quizzes) ? v.quizzes : {})) {
    if (isRecord(q) && Array.isArray(q.answer) && q.answer.every((n) => Number.isInteger(n)) && typeof q.correct === 'boolean') {
      quizzes[id] = { answer: q.answer as number[], correct: q.correct };
    }
  }
  return { steps: flags(v.steps), checks: flags(v.checks), quizzes, updatedAt: typeof v.updatedAt === 'string' ? v.updatedAt : '' };
}

export function loadProgress(lesson: string): LessonProgress {
  return readJson(key(lesson), parse) ?? emptyProgress();
}

export function saveProgress(lesson: string, p: LessonProgress): void {
  p.updatedAt = new Date().toISOString();
  writeJson(key(lesson), p);
}

export function clearProgress(lesson: string): void {
  removeKey(key(lesson));
}

/** A step is done when the learner says so, or when it has checks and every one has passed. */
export function stepDone(step: LessonShape['steps'][number], p: LessonProgress): boolean {
  return p.steps[step.id] === true || (step.checks.length > 0 && step.checks.every((c) => p.checks[c]));
}

export function summarize(shape: LessonShape, p: LessonProgress) {
  const checks = shape.steps.flatMap((s) => s.checks);
  const quizzes = shape.steps.flatMap((s) => s.quizzes);
  const stepsDone = shape.steps.filter((s) => stepDone(s, p)).length;
  return {
    steps: shape.steps.length,
    stepsDone,
    checks: checks.length,
    checksPassed: checks.filter((c) => p.checks[c]).length,
    quizzes: quizzes.length,
    quizzesRight: quizzes.filter((q) => p.quizzes[q]?.correct).length,
    started: stepsDone > 0 || Object.keys(p.checks).length > 0 || Object.keys(p.quizzes).length > 0,
    done: shape.steps.length > 0 && stepsDone === shape.steps.length,
    firstOpen: shape.steps.find((s) => !stepDone(s, p)),
  };
}

// What the server needs from lessons: seed files, checks, and the reference commands that replay a step.
// Backed by the shared lesson module.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lesson, PlannedStep, ReferenceCommand } from '../lessons/lib/index.ts';
import { ApiError, notFound } from './errors.ts';
import type { SeedFile } from './sandboxes/manager.ts';

export type CheckDef = { id: string; title: string; node: string; script: string; fail: string; pass?: string };

export type QuizDef = { id: string; multiple: boolean; options: { correct: boolean; explainHtml: string }[] };
export type QuizVerdict = {
  id: string;
  correct: boolean;
  multiple: boolean;
  /** How many options are right in all, and how many of the chosen ones are right or wrong. */
  rightCount: number;
  chosenRight: number;
  chosenWrong: number;
  /** The explanation of each chosen option, and whether choosing it was right. */
  explanations: { option: number; correct: boolean; html: string }[];
};

export interface LessonCatalog {
  seedFiles(lesson: string): SeedFile[];
  check(lesson: string, checkId: string): CheckDef;
  ids(): string[];
  /** The lesson's and a step's titles, for the instructor's dashboard (null when unknown). */
  titles?(lesson: string, step?: string | null): { lesson: string; step: string | null } | null;
  /** Judges an answer on the server: the pages do not carry the answers. */
  answer?(lesson: string, quizId: string, chosen: number[]): QuizVerdict;
  /** Skip to `step`: the lesson's node count and, in order, the steps before it with their reference commands. */
  replayPlan(lesson: string, step: string): { nodes: number; steps: PlannedStep[] };
  /** Show me: what a learner would type for `step`. */
  reference(lesson: string, step: string): ReferenceCommand[];
}

/** The replay module's two planners, passed in so that a server without lessons never loads the parser. */
type Planners = {
  replayPlan: (l: Lesson, step: string, dir: string) => PlannedStep[];
  referenceFor: (l: Lesson, step: Lesson['steps'][number], dir: string) => ReferenceCommand[];
};

/** The explanations as the lesson module rendered them (lessons/lib/parse.ts), so server and page agree. */
function explanationsIn(html: string, quizId: string): Map<number, string> {
  const out = new Map<number, string>();
  const start = html.indexOf(`data-quiz-id="${quizId}"`);
  if (start < 0) return out;
  const body = html.slice(start, html.indexOf('</fieldset>', start));
  for (const m of body.matchAll(/<div class="berth-quiz-explain" data-option="(\d+)"[^>]*>([\s\S]*?)<\/div>/g)) out.set(Number(m[1]), m[2]);
  return out;
}

/** Loads every valid lesson once; broken lessons are reported by the loader and simply absent here. */
export async function loadCatalog(dir: string, log: { warn: (o: object, m: string) => void }): Promise<LessonCatalog> {
  // A deployment (or a test) without lessons needs no parser.
  if (!existsSync(dir) || readdirSync(dir).length === 0) return catalogOf(dir, []);
  const lib = await import('../lessons/lib/index.ts');
  const { lessons, errors } = lib.loadLessons(dir);
  for (const e of errors) log.warn({ file: e.file, line: e.line }, `lesson error: ${e.message}`);
  return catalogOf(dir, lessons, lib);
}

export function catalogOf(dir: string, lessons: Lesson[], planners?: Planners): LessonCatalog {
  const byId = new Map(lessons.map((l) => [l.id, l]));
  const get = (id: string) => {
    const l = byId.get(id);
    if (!l) throw notFound('lesson', id);
    return l;
  };
  return {
    ids: () => [...byId.keys()],
    seedFiles(id) {
      const l = get(id);
      return l.files.map((f) => ({ path: f.workspacePath, content: readFileSync(join(dir, id, f.sourcePath)) }));
    },
    check(id, checkId) {
      for (const step of get(id).steps) {
        const c = step.checks.find((x) => x.id === checkId);
        if (c) return c;
      }
      throw new ApiError(404, 'CHECK_NOT_FOUND', `Lesson ${id} has no check ${JSON.stringify(checkId)}.`);
    },
    titles(id, step) {
      const l = byId.get(id);
      if (!l) return null;
      return { lesson: l.title ?? id, step: step ? (l.steps.find((s) => s.id === step)?.title ?? step) : null };
    },
    answer(id, quizId, chosen) {
      for (const step of get(id).steps) {
        const q = step.quizzes?.find((x) => x.id === quizId);
        if (!q) continue;
        if (
          chosen.some((n) => !Number.isInteger(n) || n < 0 || n >= q.options.length) ||
          new Set(chosen).size !== chosen.length ||
          (!q.multiple && chosen.length > 1)
        ) {
          throw new ApiError(
            400,
            'VALIDATION_FAILED',
            `answer: ${q.multiple ? 'distinct option numbers' : 'one option number'} from 0 to ${q.options.length - 1}.`,
          );
        }
        const html = explanationsIn(step.html ?? '', q.id);
        const rightCount = q.options.filter((o) => o.correct).length;
        const chosenRight = chosen.filter((n) => q.options[n].correct).length;
        const chosenWrong = chosen.length - chosenRight;
        return {
          id: q.id,
          multiple: q.multiple,
          rightCount,
          chosenRight,
          chosenWrong,
          correct: chosenWrong === 0 && chosenRight === rightCount,
          explanations: [...chosen].sort((a, b) => a - b).map((n) => ({ option: n, correct: q.options[n].correct, html: html.get(n) ?? '' })),
        };
      }
      throw new ApiError(404, 'QUIZ_NOT_FOUND', `Lesson ${id} has no question ${JSON.stringify(quizId)}.`);
    },
    replayPlan(id, step) {
      const l = stepOf(id, step).lesson;
      return { nodes: l.nodes, steps: planners!.replayPlan(l, step, dir) };
    },
    reference(id, step) {
      const { lesson, found } = stepOf(id, step);
      return planners!.referenceFor(lesson, found, dir);
    },
  };
  function stepOf(id: string, step: string) {
    const lesson = get(id);
    const found = lesson.steps.find((s) => s.id === step);
    if (!found) throw new ApiError(404, 'STEP_NOT_FOUND', `Lesson ${id} has no step ${JSON.stringify(step)}.`);
    return { lesson, found };
  }
}

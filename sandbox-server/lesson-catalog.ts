// What the server needs from lessons: seed files, checks, and the reference commands that replay a step.
// Backed by the shared lesson module.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lesson, PlannedStep, ReferenceCommand } from '../lessons/lib/index.ts';
import { ApiError, notFound } from './errors.ts';
import type { SeedFile } from './sandboxes/manager.ts';

export type CheckDef = { id: string; title: string; node: string; script: string; fail: string; pass?: string };

export interface LessonCatalog {
  seedFiles(lesson: string): SeedFile[];
  check(lesson: string, checkId: string): CheckDef;
  ids(): string[];
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

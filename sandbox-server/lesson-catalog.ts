// What the server needs from lessons: seed files and checks. Backed by the shared lesson module.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, notFound } from './errors.ts';
import type { SeedFile } from './sandboxes/manager.ts';

export type CheckDef = { id: string; title: string; node: string; script: string; fail: string; pass?: string };

export interface LessonCatalog {
  seedFiles(lesson: string): SeedFile[];
  check(lesson: string, checkId: string): CheckDef;
  ids(): string[];
}

type LoadedLesson = {
  id: string;
  files: { workspacePath: string; sourcePath: string }[];
  steps: { checks: CheckDef[] }[];
};

/** Loads every valid lesson once; broken lessons are reported by the loader and simply absent here. */
export async function loadCatalog(dir: string, log: { warn: (o: object, m: string) => void }): Promise<LessonCatalog> {
  // A deployment (or a test) without lessons needs no parser.
  if (!existsSync(dir) || readdirSync(dir).length === 0) return catalogOf(dir, []);
  const lib = await import('../lessons/lib/index.ts') as { loadLessons: (d: string) => { lessons: LoadedLesson[]; errors: { file: string; line: number; message: string }[] } };
  const { lessons, errors } = lib.loadLessons(dir);
  for (const e of errors) log.warn({ file: e.file, line: e.line }, `lesson error: ${e.message}`);
  return catalogOf(dir, lessons);
}

export function catalogOf(dir: string, lessons: LoadedLesson[]): LessonCatalog {
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
  };
}

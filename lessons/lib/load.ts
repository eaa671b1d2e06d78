// Reads every lesson folder, parses each, and checks what spans files: seed files, solutions,
// diagrams and prerequisites. A broken lesson is reported and left out; the others are returned.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { parseLesson } from './parse.ts';
import { solutionPath } from './paths.ts';
import type { Lesson, LessonError } from './schema.ts';

export { solutionPath };

const LESSON_DIR = /^\d{2}-[a-z0-9-]+$/;

export function loadLessons(dir: string): { lessons: Lesson[]; errors: LessonError[] } {
  const errors: LessonError[] = [];
  const parsed: Lesson[] = [];
  const ids = readdirSync(dir).filter((d) => LESSON_DIR.test(d) && statSync(join(dir, d)).isDirectory()).sort();
  for (const id of ids) {
    const file = join(dir, id, 'lesson.md');
    const shown = join('lessons', id, 'lesson.md');
    if (!existsSync(file)) { errors.push({ file: shown, line: 1, message: 'lesson folder without lesson.md' }); continue; }
    const r = parseLesson(id, readFileSync(file, 'utf8'), { file: shown });
    const own: LessonError[] = [...r.errors];
    if (r.lesson) {
      const l = r.lesson;
      const inside = (p: string) => !normalize(p).startsWith('..');
      for (const f of l.files) {
        if (!inside(f.sourcePath) || !existsSync(join(dir, id, f.sourcePath))) own.push({ file: shown, line: 2, message: `files: ${f.sourcePath} does not exist in the lesson folder` });
      }
      for (const a of l.assets) {
        if (!inside(a) || !existsSync(join(dir, id, a))) own.push({ file: shown, line: 1, message: `diagram or image ${a} does not exist in the lesson folder` });
      }
      for (const s of l.steps.filter((x) => x.exercise)) {
        if (!existsSync(solutionPath(dir, id, s.id))) own.push({ file: shown, line: s.line, message: `exercise ${s.id} needs a reference solution at solutions/${s.id}.sh` });
      }
      if (!own.length) parsed.push(l);
    }
    errors.push(...own);
  }
  // Prerequisites must name lessons that loaded, and must not loop.
  const byId = new Map(parsed.map((l) => [l.id, l]));
  const lessons = parsed.filter((l) => {
    const missing = l.prerequisites.filter((p) => !byId.has(p));
    if (missing.length) errors.push({ file: join('lessons', l.id, 'lesson.md'), line: 2, message: `prerequisites: ${missing.join(', ')} is not an available lesson` });
    return !missing.length;
  });
  for (const l of lessons) {
    const seen = new Set<string>();
    const walk = (id: string): boolean => {
      if (id === l.id && seen.size) return true;
      if (seen.has(id)) return false;
      seen.add(id);
      return (byId.get(id)?.prerequisites ?? []).some(walk);
    };
    if (l.prerequisites.some(walk)) errors.push({ file: join('lessons', l.id, 'lesson.md'), line: 2, message: 'prerequisites form a cycle' });
  }
  return { lessons, errors };
}

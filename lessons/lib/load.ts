// Reads every lesson folder, parses each, and checks what spans files: seed files, solutions,
// diagrams and prerequisites. A broken lesson is reported and left out; the others are returned.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { needsThreeFakes, parseFakes, type Fake } from './fakes.ts';
import { parseLesson } from './parse.ts';
import { solutionPath } from './paths.ts';
import type { Lesson, LessonError } from './schema.ts';

export { solutionPath };

const LESSON_DIR = /^\d{2}-[a-z0-9-]+$/;

/**
 * The lesson's fakes by check id, and every problem with them: a file for a check that does not
 * exist, a check without fakes, too few fakes for a check that an imitation could satisfy.
 */
export function loadFakes(dir: string, lesson: Lesson): { byCheck: Map<string, Fake[]>; errors: LessonError[] } {
  const byCheck = new Map<string, Fake[]>();
  const errors: LessonError[] = [];
  const folder = join(dir, lesson.id, 'fakes');
  const checks = new Map(lesson.steps.flatMap((s) => s.checks.map((c) => [c.id, c] as const)));
  const files = existsSync(folder) ? readdirSync(folder).sort() : [];
  for (const f of files) {
    const shown = join('lessons', lesson.id, 'fakes', f);
    const id = f.replace(/\.sh$/, '');
    if (!f.endsWith('.sh') || !checks.has(id)) {
      errors.push({ file: shown, line: 1, message: `${f} names no check of ${lesson.id} (fakes/<check-id>.sh)` });
      continue;
    }
    const r = parseFakes(readFileSync(join(folder, f), 'utf8'), shown);
    for (const k of r.fakes)
      if (Number(k.node.slice(4)) > lesson.nodes)
        r.errors.push({ file: shown, line: k.line, message: `fake uses ${k.node}, but the lesson has nodes: ${lesson.nodes}` });
    errors.push(...r.errors);
    byCheck.set(id, r.fakes);
  }
  const shown = join('lessons', lesson.id, 'lesson.md');
  for (const c of checks.values()) {
    const n = byCheck.get(c.id)?.length ?? 0;
    const need = needsThreeFakes(c.script) ? 3 : 1;
    if (n < need)
      errors.push({
        file: shown,
        line: c.line,
        message: `check ${c.id} has ${n} fake${n === 1 ? '' : 's'} in fakes/${c.id}.sh; it needs at least ${need}${need > 1 ? ' (it reads names, tags, labels, logs or HTTP bodies, which are easy to imitate)' : ''}`,
      });
  }
  return { byCheck, errors };
}

export function loadLessons(dir: string): { lessons: Lesson[]; errors: LessonError[] } {
  const errors: LessonError[] = [];
  const parsed: Lesson[] = [];
  const ids = readdirSync(dir)
    .filter((d) => LESSON_DIR.test(d) && statSync(join(dir, d)).isDirectory())
    .sort();
  for (const id of ids) {
    const file = join(dir, id, 'lesson.md');
    const shown = join('lessons', id, 'lesson.md');
    if (!existsSync(file)) {
      errors.push({ file: shown, line: 1, message: 'lesson folder without lesson.md' });
      continue;
    }
    const r = parseLesson(id, readFileSync(file, 'utf8'), { file: shown });
    const own: LessonError[] = [...r.errors];
    if (r.lesson) {
      const l = r.lesson;
      const inside = (p: string) => !normalize(p).startsWith('..');
      for (const f of l.files) {
        if (!inside(f.sourcePath) || !existsSync(join(dir, id, f.sourcePath)))
          own.push({ file: shown, line: 2, message: `files: ${f.sourcePath} does not exist in the lesson folder` });
      }
      for (const a of l.assets) {
        if (!inside(a) || !existsSync(join(dir, id, a)))
          own.push({ file: shown, line: 1, message: `diagram or image ${a} does not exist in the lesson folder` });
      }
      for (const s of l.steps.filter((x) => x.exercise)) {
        if (!existsSync(solutionPath(dir, id, s.id)))
          own.push({ file: shown, line: s.line, message: `exercise ${s.id} needs a reference solution at solutions/${s.id}.sh` });
      }
      if (!own.length) parsed.push(l);
      // Fakes are for the verifier only: a problem with them is reported but keeps the lesson on the site.
      if (!own.length) errors.push(...loadFakes(dir, l).errors);
    }
    errors.push(...own);
  }
  // Prerequisites must name lessons that loaded, and must not loop.
  const byId = new Map(parsed.map((l) => [l.id, l]));
  const lessons = parsed.filter((l) => {
    const missing = l.prerequisites.filter((p) => !byId.has(p));
    if (missing.length)
      errors.push({ file: join('lessons', l.id, 'lesson.md'), line: 2, message: `prerequisites: ${missing.join(', ')} is not an available lesson` });
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

// `npm run lessons:check`: every problem in every lesson, as file:line: message.
import { join } from 'node:path';
import { loadLessons } from './load.ts';

const dir = process.argv[2] ?? join(import.meta.dirname, '..');
const { lessons, errors } = loadLessons(dir);
for (const e of errors) console.log(`${e.file}:${e.line}: ${e.message}`);
const steps = lessons.reduce((n, l) => n + l.steps.length, 0);
const checks = lessons.reduce((n, l) => n + l.steps.reduce((m, s) => m + s.checks.length, 0), 0);
console.log(`${lessons.length} lessons, ${steps} steps, ${checks} checks; ${errors.length} problem${errors.length === 1 ? '' : 's'}`);
process.exit(errors.length ? 1 : 0);

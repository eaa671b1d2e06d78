// Docs that stay true: the README's configuration and API tables are generated from the schemas and contracts, every variable the code
// reads is in it, and every file a document or a comment points to exists in the repository.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configSchema, memberConfigSchema, workshopConfigSchema } from '../../sandbox-server/config.ts';
import { withApiTable } from '../../sandbox-server/api-doc.ts';
import { RUNTIME_ENV, readmePath, withTable } from '../../sandbox-server/config-doc.ts';

const root = join(import.meta.dirname, '..', '..');
const tracked = (...patterns: string[]) =>
  execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...patterns], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && existsSync(join(root, f)));

test('the README configuration table matches the schemas (npm run docs:config rewrites it)', (t) => {
  const readme = readFileSync(readmePath, 'utf8');
  t.is(withTable(readme), readme, 'README.md is out of date: run `npm run docs:config`');
});

test('the README API table matches the contracts (npm run docs:api rewrites it)', (t) => {
  const readme = readFileSync(readmePath, 'utf8');
  t.is(withApiTable(readme), readme, 'README.md is out of date: run `npm run docs:api`');
});

test('every environment variable the server and the runtime read is documented', (t) => {
  // PATH is the system's, not a setting: the runtime only trims npm's entries from it for the daemons it starts.
  const documented = new Set([
    ...Object.keys(configSchema.shape),
    ...Object.keys(workshopConfigSchema.shape),
    ...Object.keys(memberConfigSchema.shape),
    ...Object.keys(RUNTIME_ENV),
    'PATH',
  ]);
  const read = new Map<string, string>();
  for (const f of tracked('runtime/*.ts', 'sandbox-server/*.ts', 'sandbox-server/member/*.ts', 'site/build.ts')) {
    for (const m of readFileSync(join(root, f), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)|\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g)) {
      read.set(m[1] ?? m[2], f);
    }
  }
  t.true(read.size > 3, 'the scan found the variables it looks for');
  for (const [name, file] of read) t.true(documented.has(name), `${name} (read in ${file}) is in no schema and not in RUNTIME_ENV`);
});

test('documents and comments point only at files that exist', (t) => {
  const missing: string[] = [];
  // Paths into the repository written in prose or comments, e.g. sandbox-server/terminal/protocol.ts. Files the
  // tests write (tests/artifacts/) are outputs, not sources.
  const repoPath = /(?<![\w./-])((?:runtime|sandbox-server|lessons|site|tests|docs|shared|\.ci)\/[\w./-]*\.(?:ts|md|sh|json|py|yml|astro|mjs))\b/g;
  for (const f of tracked('*.md', '*.ts')) {
    if (f.startsWith('lessons/') && !f.startsWith('lessons/lib/') && f !== 'lessons/README.md' && f !== 'lessons/FORMAT.md') continue; // lesson prose names learners' files
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(repoPath)) {
      if (!m[1].startsWith('tests/artifacts/') && !existsSync(join(root, m[1]))) missing.push(`${f}: ${m[1]}`);
    }
    if (!f.endsWith('.md')) continue;
    for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/i.test(m[1])) continue;
      if (!existsSync(join(root, dirname(f), m[1]))) missing.push(`${f}: link ${m[1]}`);
    }
  }
  t.deepEqual(missing, []);
});

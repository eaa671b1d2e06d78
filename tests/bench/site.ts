// 6. Site: what a lesson page makes the browser fetch, from the built output (site/dist), as sent (gzip):
// the page's own JS and CSS, then xterm when the workbench starts, then Monaco when the editor is opened.
// Baseline: the page-JS budget in site/README.md (the e2e test asserts it in a real browser too).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Ctx } from './lib/context.ts';
import { ratio } from './lib/report.ts';

const BUDGET_GZIP = 20 * 1024;
const dist = resolve(import.meta.dirname, '..', '..', 'site', 'dist');
const assets = join(dist, '_astro');

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const read = (name: string) => readFileSync(join(assets, name), 'utf8');

/** Bytes on the wire: the .gz the build wrote beside the file, or gzip now for files it left plain. */
function sent(name: string) {
  const gz = join(assets, `${name}.gz`);
  const raw = readFileSync(join(assets, name));
  return { raw: raw.length, gzip: existsSync(gz) ? readFileSync(gz).length : gzipSync(raw, { level: 9 }).length };
}

// Quotes of any kind: Vite 8 (Rolldown, Astro 7) writes dynamic imports with backticks, import(`./x.js`).
const staticImports = (name: string) => [...read(name).matchAll(/(?:from|import)\s*["'`]\.\/([^"'`]+\.js)["'`]/g)].map((m) => m[1]);
const dynamicImports = (name: string) => [...read(name).matchAll(/import\(\s*["'`]\.\/([^"'`]+\.js)["'`]\s*\)/g)].map((m) => m[1]);

/** The files a module loads before it runs: itself and its static imports, transitively. */
function closure(entries: string[], seen = new Set<string>()) {
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f) || !existsSync(join(assets, f))) continue;
    seen.add(f);
    todo.push(...staticImports(f));
  }
  return seen;
}

const total = (files: Iterable<string>) =>
  [...files].reduce(
    (m, f) => {
      const s = sent(f);
      return { raw: m.raw + s.raw, gzip: m.gzip + s.gzip };
    },
    { raw: 0, gzip: 0 },
  );

/** One lesson page: its own JS and CSS, the terminal's chunks and the editor's (with the Dockerfile mode it opens on). */
export function pageWeight(html: string) {
  const scripts = [...html.matchAll(/<script[^>]*type="module"[^>]*src="\/_astro\/([^"]+)"/g)].map((m) => m[1]);
  const css = [...html.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="\/_astro\/([^"]+)"/g)].map((m) => m[1]);
  const page = closure(scripts);
  const lazy = [...page].flatMap(dynamicImports);
  const terminal = closure(
    lazy.filter((f) => f.includes('xterm')),
    new Set(page),
  );
  for (const f of page) terminal.delete(f);
  const editorEntry = lazy.filter((f) => /^editor\./.test(f));
  const editor = closure(editorEntry, new Set([...page, ...terminal]));
  for (const f of [...page, ...terminal]) editor.delete(f);
  // Workers and fonts are fetched by name from the editor's code; the Dockerfile mode is imported when a Dockerfile opens.
  const names = new Set(readdirSync(assets).filter((f) => !/\.(gz|br)$/.test(f)));
  for (const f of [...editor]) {
    const text = read(f);
    for (const n of names) if (!editor.has(n) && /\.worker|\.ttf$/.test(n) && text.includes(n)) editor.add(n);
    for (const d of dynamicImports(f)) if (d.startsWith('dockerfile.')) for (const x of closure([d])) if (!page.has(x) && !terminal.has(x)) editor.add(x);
  }
  return {
    js: total(page),
    css: total(css),
    terminal: total(terminal),
    editor: total(editor),
    files: { page: [...page], css, terminal: [...terminal], editor: [...editor] },
  };
}

export async function site(ctx: Ctx) {
  if (!existsSync(join(dist, 'lessons'))) {
    ctx.log('site: building site/dist first');
    const r = spawnSync(process.execPath, [resolve(dist, '..', 'build.ts')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('the site build failed');
  }
  const pages = readdirSync(join(dist, 'lessons')).filter((d) => existsSync(join(dist, 'lessons', d, 'index.html')));
  if (!pages.length) throw new Error('site/dist has no lesson pages');
  const weights = pages.map((p) => ({ page: p, ...pageWeight(readFileSync(join(dist, 'lessons', p, 'index.html'), 'utf8')) }));
  const worst = weights.reduce((a, b) => (b.js.gzip + b.css.gzip > a.js.gzip + a.css.gzip ? b : a));
  if (!worst.terminal.gzip || !worst.editor.gzip) throw new Error(`could not find the terminal or editor chunks of ${worst.page}`);
  const budget = `${kib(BUDGET_GZIP)} gzip`;
  const budgetIs = 'the page-JS budget (site/README.md)';
  const row = (what: string, s: { raw: number; gzip: number }, target?: { text: string; met: boolean }) =>
    ctx.rows.push({
      section: 'site',
      what,
      berth: `${kib(s.gzip)} gzip (${kib(s.raw)} raw)`,
      baseline: budget,
      baselineIs: budgetIs,
      ratio: ratio(s.gzip, BUDGET_GZIP),
      ...(target ? { target: target.text, met: target.met } : {}),
    });
  const heaviest = `heaviest of ${pages.length} lesson pages (${worst.page})`;
  row(`page JS, ${heaviest}`, worst.js, { text: '≤ 20 KiB gzip', met: worst.js.gzip <= BUDGET_GZIP });
  row('page CSS, same page', worst.css);
  row('+ xterm, when the workbench starts', worst.terminal);
  row('+ Monaco, worker and Dockerfile mode, when the editor opens', worst.editor);
  const before = { raw: worst.js.raw + worst.css.raw + worst.terminal.raw, gzip: worst.js.gzip + worst.css.gzip + worst.terminal.gzip };
  row('everything before the editor opens', before);
  row('everything with the editor open', { raw: before.raw + worst.editor.raw, gzip: before.gzip + worst.editor.gzip });
  ctx.data.site = weights.map((w) => ({ page: w.page, js: w.js, css: w.css, terminal: w.terminal, editor: w.editor, files: w.files }));
}

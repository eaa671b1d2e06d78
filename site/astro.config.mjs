// The lesson site: static pages generated from lessons/ at build time (see README.md).
import { defineConfig } from 'astro/config';
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const lessonsDir = process.env.BERTH_LESSONS_DIR ?? `${repo}lessons`;

/**
 * Astro links every CSS file reachable from a page, dynamic imports included, so Monaco's 120 kB of
 * CSS would load on every lesson page. This turns Monaco's CSS imports into JS that injects a <style>
 * when the editor chunk runs, keeping all of the editor behind the tab that opens it.
 */
function monacoCssInChunk() {
  const PREFIX = '\0berth-monaco-css:';
  return {
    name: 'berth-monaco-css-in-chunk',
    enforce: 'pre',
    apply: 'build',
    async resolveId(source, importer) {
      if (!source.endsWith('.css') || !importer?.includes('/node_modules/monaco-editor/')) return null;
      const r = await this.resolve(source, importer, { skipSelf: true });
      // The id must not end in .css, or Vite's own CSS plugin takes it back.
      return r ? `${PREFIX}${r.id}.js` : null;
    },
    load(id) {
      if (!id.startsWith(PREFIX)) return null;
      const file = id.slice(PREFIX.length, -'.js'.length);
      const refs = [];
      const css = readFileSync(file, 'utf8').replace(/url\((['"]?)(\.{1,2}\/[^'")?#]+)[^'")]*\1\)/g, (_m, _q, rel) => {
        refs.push(this.emitFile({ type: 'asset', name: basename(rel), source: readFileSync(resolve(dirname(file), rel)) }));
        return `url(\u0000${refs.length - 1}\u0000)`;
      });
      const text = JSON.stringify(css).replace(/\\u0000(\d+)\\u0000/g, (_m, i) => `" + import.meta.ROLLUP_FILE_URL_${refs[Number(i)]} + "`);
      return `const s = document.createElement('style'); s.dataset.from = 'monaco'; s.textContent = ${text}; document.head.append(s);`;
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // site/build.ts builds elsewhere and swaps the result in; a plain `astro build` writes dist/.
  outDir: process.env.BERTH_SITE_OUT ?? './dist',
  trailingSlash: 'always',
  build: { format: 'directory', inlineStylesheets: 'auto' },
  devToolbar: { enabled: false },
  vite: {
    plugins: [monacoCssInChunk()],
    define: { __BERTH_LESSONS_DIR__: JSON.stringify(lessonsDir) },
    server: { fs: { allow: [repo] } },
    worker: { format: 'es' },
    build: {
      // Monaco is big by nature and only loads when the editor opens. No manualChunks: the dynamic
      // imports (xterm-lib.ts, editor.ts) already cut the chunks, and a manual chunk would pull
      // Vite's preload helper, and so itself, into the page's first load.
      chunkSizeWarningLimit: 5000,
    },
  },
});

// `npm run runtime:images [name ...]`: builds the catalog into the host engine and prints what it did.
import { ensureEngine } from '../bootstrap/engine.ts';
import { buildCatalog } from './build.ts';

const engine = await ensureEngine({ log: (m) => console.error(`[engine] ${m}`) });
const t0 = performance.now();
const only = process.argv.slice(2);
const results = await buildCatalog({ host: engine.host, only: only.length ? only : undefined, log: (m) => console.error(`[images] ${m}`) });
for (const r of results)
  console.log(
    `${r.status.padEnd(9)} ${r.name.padEnd(12)} ${(r.ms / 1000).toFixed(1)} s${r.error ? `\n          ${r.error.split('\n').join('\n          ')}` : ''}`,
  );
console.log(`catalog: ${results.filter((r) => r.status !== 'failed').length}/${results.length} ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);

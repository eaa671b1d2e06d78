// `npm run bench [-- options]`: Berth measured against its baselines, every figure beside a baseline taken in
// the same run. Writes tests/bench/results/<name>.json and .md. Not a test: nothing here passes or fails,
// except the harness itself (a section that breaks is reported and the run exits non-zero).
import { readFileSync } from 'node:fs';
import { engineHost } from '../helpers/server.ts';
import { density } from './density.ts';
import type { Ctx } from './lib/context.ts';
import { type Section, parseFlags } from './lib/flags.ts';
import { hostDocker, machine, waitForQuietMachine } from './lib/host.ts';
import { providerNodes } from '../helpers/provider-nodes.ts';
import { writeResults } from './lib/report.ts';
import { burst } from './burst.ts';
import { preview } from './preview.ts';
import { pulls } from './pulls.ts';
import { ready } from './ready.ts';
import { site } from './site.ts';
import { terminal } from './terminal.ts';

let flags: ReturnType<typeof parseFlags>;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const t0 = performance.now();
const log = (m: string) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);
const engine = await engineHost();
let provider: ReturnType<typeof providerNodes>;
try {
  provider = providerNodes(flags.provider, engine);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const ctx: Ctx = { flags, engine, docker: hostDocker(engine), provider, log, rows: [], notes: [], data: {} };
const runners: Record<Section, (c: Ctx) => Promise<void>> = { ready, terminal, preview, pulls, burst, density, site };
const failed: string[] = [];

// Heaviest last: density starts dozens of sandboxes, and whatever it leaves in the page cache should not
// flatter or burden the sections before it.
for (const section of (['site', 'ready', 'terminal', 'preview', 'pulls', 'burst', 'density'] as const).filter((s) => flags.sections.includes(s))) {
  await waitForQuietMachine(log);
  try {
    await runners[section](ctx);
  } catch (err) {
    failed.push(section);
    log(`${section} FAILED: ${(err as Error).stack ?? err}`);
    ctx.notes.push(`Section ${section} failed: ${(err as Error).message.split('\n')[0]}`);
  }
}

const results = {
  machine: await machine(engine),
  provider: flags.provider,
  flags,
  durationS: (performance.now() - t0) / 1000,
  rows: ctx.rows,
  notes: ctx.notes,
  data: ctx.data,
};
const files = writeResults(flags.out, results);
console.log('\n' + readFileSync(files.md, 'utf8'));
log(`wrote ${files.json} and ${files.md}`);
if (failed.length) {
  log(`failed sections: ${failed.join(', ')}`);
  process.exit(1);
}

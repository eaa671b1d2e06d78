// Results: one row per figure, each beside its baseline measured in the same run, written as JSON and markdown.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { round } from './stats.ts';

export type Row = {
  section: string;
  what: string;
  /** Berth's figure, formatted with its unit. */
  berth: string;
  /** The baseline's figure, formatted, and what the baseline is. */
  baseline: string;
  baselineIs: string;
  /** Berth over baseline for times, Berth as a share of baseline for rates; null where no ratio makes sense. */
  ratio: number | null;
  target?: string;
  met?: boolean;
};

export const ms = (x: number) => (x >= 1000 ? `${round(x / 1000)} s` : `${round(x)} ms`);
export const mib = (bytes: number) => `${round(bytes / 1024 ** 2)} MiB`;
export const mbps = (bytesPerSecond: number) => `${round(bytesPerSecond / 1e6)} MB/s`;
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? round(a / b) : null);

export function markdown(results: { machine: Record<string, unknown>; flags: Record<string, unknown>; rows: Row[]; notes: string[]; durationS: number }) {
  const m = results.machine as {
    date: string;
    os: string;
    kernel: string;
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    engine: string;
    commit: string;
    loadAverage1m5m15m: number[];
  };
  const lines = [
    `# Berth benchmarks`,
    '',
    `${m.date.slice(0, 10)} · ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB · ${m.os}, kernel ${m.kernel} · ${m.engine} · sandboxes on the ${String(results.flags.provider ?? 'docker')} provider · commit ${m.commit} · ${Math.round(results.durationS)} s · load average at the end ${m.loadAverage1m5m15m.join(' / ')} (shared machine)`,
    '',
    `Flags: \`${JSON.stringify(results.flags)}\``,
    '',
    '| section | what | Berth | baseline | ratio | baseline is | target | met |',
    '|---|---|---|---|---|---|---|---|',
    ...results.rows.map(
      (r) =>
        `| ${r.section} | ${r.what} | ${r.berth} | ${r.baseline} | ${r.ratio === null ? '–' : `${r.ratio}×`} | ${r.baselineIs} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : '**no**'} |`,
    ),
  ];
  if (results.notes.length) lines.push('', '## Notes', '', ...results.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}

export function writeResults(name: string, results: Parameters<typeof markdown>[0] & Record<string, unknown>) {
  const dir = join(import.meta.dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  const md = join(dir, `${name}.md`);
  writeFileSync(json, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(md, markdown(results));
  return { json, md };
}

// The README's configuration table, made from the zod schemas that parse the environment (config.ts: the
// server's and the workshops') plus the few variables the runtime bring-up reads itself. `npm run docs:config`
// rewrites the table; tests/unit/docs.test.ts fails when the README and the schemas disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema, memberConfigSchema, workshopConfigSchema } from './config.ts';

/** Read by runtime/ straight from the environment (runtime/up.ts, runtime/bootstrap/engine.ts), before any server exists. */
export const RUNTIME_ENV: Record<string, { default: string; what: string }> = {
  DOCKER_HOST: {
    default: '',
    what: 'the host engine to use; unset: `/var/run/docker.sock` if it answers, else an engine Berth starts (and keeps) under the state folder',
  },
  BERTH_ADDRESS_POOL: { default: '10.201.0.0/16', what: 'address pool of an engine Berth starts, cut into /26 networks (one per session)' },
  BERTH_MIRROR_UPSTREAM: {
    default: '',
    what: 'make the mirror a pull-through cache of this registry, e.g. https://registry-1.docker.io (hosts with internet only)',
  },
  BERTH_INCUS: {
    default: '',
    what: '0: do not bring up Incus (the rootless Docker provider remains); otherwise Incus is brought up where the host can run it (root on Debian 12 or 13)',
  },
  BERTH_INCUS_POOL_SIZE: { default: '', what: 'size in GiB of the btrfs pool Berth makes for Incus nodes; default half the free space, at most 200' },
  BERTH_INCUS_SHARED_USR: {
    default: '',
    what: "0: nodes get their own /usr instead of the image's, shared read-only (which saves ~180 MiB of page cache per idle node)",
  },
  INCUS_DIR: { default: '/var/lib/incus', what: "Incus's state folder (as for the incus command)" },
  INCUS_SOCKET: { default: '', what: "Incus's unix socket; default INCUS_DIR/unix.socket" },
};

export const BEGIN = '<!-- config-table:begin -->';
export const END = '<!-- config-table:end -->';

type Row = { name: string; default: string; what: string };

function rowsOf(schema: z.ZodObject): Row[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const f = field as z.ZodType;
    let inner: z.ZodType = f;
    let def = '';
    if (f instanceof z.ZodDefault) {
      def = String(f.def.defaultValue);
      inner = f.unwrap() as z.ZodType;
    }
    if (f instanceof z.ZodOptional) inner = f.unwrap() as z.ZodType;
    const choices = inner instanceof z.ZodEnum ? ` (${inner.options.join(' | ')})` : '';
    if (!f.description) throw new Error(`${name} has no .describe(): every setting needs one line for the README`);
    return { name, default: def, what: f.description + choices };
  });
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** The generated part of the README, markers included. */
export function configTable(): string {
  const section = (name: string, source: string, rows: Row[]) => [
    `**${name}** (${source})`,
    '',
    '| variable | default | what |',
    '|---|---|---|',
    ...rows.map((r) => `| \`${r.name}\` | ${r.default === '' ? '' : `\`${r.default}\``} | ${cell(r.what)} |`),
    '',
  ];
  return [
    BEGIN,
    '<!-- generated from the schemas by `npm run docs:config`; tests/unit/docs.test.ts fails when it is out of date -->',
    '',
    ...section('Server', '`sandbox-server/config.ts`', rowsOf(configSchema)),
    ...section('Workshops', '`sandbox-server/config.ts`', rowsOf(workshopConfigSchema)),
    ...section(
      'Member agent',
      '`sandbox-server/config.ts`; besides it, the agent reads BERTH_EGRESS_POLICY, BERTH_EGRESS_ALLOW, BERTH_MIRROR_PORT, BERTH_INCUS_SOCKET and LOG_LEVEL as the server does',
      rowsOf(memberConfigSchema),
    ),
    ...section(
      'Runtime bring-up',
      '`runtime/`, read before the server starts',
      Object.entries(RUNTIME_ENV).map(([name, r]) => ({ name, ...r })),
    ),
    END,
  ].join('\n');
}

export const readmePath = join(import.meta.dirname, '..', 'README.md');

/** The text with what lies between two markers (markers included) replaced; throws if the markers are missing. */
export function replaceBetween(text: string, begin: string, end: string, by: string, what: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${what} markers`);
  return text.slice(0, a) + by + text.slice(b + end.length);
}

/** The README with its table replaced by the current one; throws if the markers are missing. */
export const withTable = (readme: string) => replaceBetween(readme, BEGIN, END, configTable(), 'configuration table');

/** Rewrites the README with one of its generated tables brought up to date (the npm run docs:* scripts). */
export function rewriteReadme(update: (readme: string) => string, what: string) {
  const before = readFileSync(readmePath, 'utf8');
  const after = update(before);
  if (after !== before) writeFileSync(readmePath, after);
  console.log(after === before ? `README.md ${what} is up to date` : `README.md ${what} rewritten`);
}

if (import.meta.main) rewriteReadme(withTable, 'configuration table');

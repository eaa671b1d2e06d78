// The README's API table, made from the contracts (sandbox-server/api.ts, sandbox-server/workshops/api.ts, sandbox-server/machines/api.ts).
// `npm run docs:api` rewrites it; tests/unit/docs.test.ts fails when the README and the contracts disagree.
import { z } from 'zod';
import { BODY, ENGINE, SESSION, sessionRoutes } from './api.ts';
import { replaceBetween, rewriteReadme } from './config-doc.ts';
import { splitKey, type Auth, type Contract, type Errors, type RouteDef } from './contract.ts';
import { workshopRoutes } from './workshops/api.ts';
import { machineRoutes } from './machines/api.ts';

export const BEGIN = '<!-- api-table:begin -->';
export const END = '<!-- api-table:end -->';

/** The shape of a schema in one line, as the README writes it: {lesson?, nodes:[{name}]}, "dir". */
export function shape(s: z.ZodType, depth = 0): string {
  const t = unwrap(s);
  const title = z.globalRegistry.get(t)?.title;
  if (title && depth > 0) return title;
  if (t instanceof z.ZodObject) {
    const fields = Object.entries(t.shape as Record<string, z.ZodType>).map(([k, v]) => {
      const inner = unwrap(v);
      const nested =
        inner instanceof z.ZodObject ||
        inner instanceof z.ZodLiteral ||
        inner instanceof z.ZodUnion ||
        (inner instanceof z.ZodArray && unwrap(inner.element as z.ZodType) instanceof z.ZodObject);
      return `${k}${optional(v) ? '?' : ''}${nested && depth < 2 ? `:${shape(inner, depth + 1)}` : ''}`;
    });
    return `{${fields.join(', ')}}`;
  }
  if (t instanceof z.ZodArray) return `[${shape(t.element as z.ZodType, depth)}]`;
  if (t instanceof z.ZodLiteral) return JSON.stringify(t.value);
  if (t instanceof z.ZodUnion) return (t.options as z.ZodType[]).map((o) => shape(o, depth)).join(' | ');
  if (t instanceof z.ZodEnum) return t.options.map((o) => JSON.stringify(o)).join('|');
  return '…';
}

const optional = (s: z.ZodType) => s instanceof z.ZodOptional || s instanceof z.ZodDefault;
/** The schema under optional, default, nullable and transforms (what a client sends or reads). */
function unwrap(s: z.ZodType): z.ZodType {
  if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) return unwrap(s.unwrap() as z.ZodType);
  if (s instanceof z.ZodPipe) return unwrap((s.in instanceof z.ZodTransform ? s.out : s.in) as z.ZodType);
  return s;
}

const TOKEN: Record<Auth, string> = {
  none: '',
  session: 'session',
  admin: 'admin',
  'admin-or-ticket': 'admin or `?ticket=`',
  metrics: 'metrics or admin',
  'session-subprotocol': 'session (subprotocol)',
  'admin-subprotocol-or-ticket': 'admin (subprotocol) or `?ticket=`',
};
/** Errors most routes share, explained once under the table instead of on every row. */
const SHARED = [SESSION, ENGINE, BODY, { 401: ['UNAUTHORIZED'], 404: ['WORKSHOP_NOT_FOUND'] }] as Errors[];
const shared = (status: string, code: string) => SHARED.some((s) => s[Number(status) as 400]?.includes(code as 'INTERNAL'));

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const code = (s: string) => `\`${s.replaceAll('|', '\\|')}\``;

function row(key: string, r: RouteDef): string {
  const { method, path } = splitKey(key);
  const query = r.query
    ? `?${Object.keys(r.query.shape)
        .map((k) => `${k}=`)
        .join('&')}`
    : '';
  const route = `${code(`${method} ${path}${query}`)}${r.body ? ` ${code(shape(r.body))}` : ''}`;
  const answers = Object.entries(r.responses)
    .map(([status, reply]) => {
      if (reply === null || reply === undefined) return status;
      if ('media' in reply) return `${status} ${reply.media}`;
      return `${status} ${code(z.globalRegistry.get(reply)?.title ?? shape(reply))}`;
    })
    .join('; ');
  const errors = Object.entries(r.errors)
    .flatMap(([status, codes]) => {
      const own = (codes ?? []).filter((c) => !shared(status, c));
      return own.length ? [`${status} ${own.map((c) => `\`${c}\``).join('/')}`] : [];
    })
    .join(', ');
  return `| ${route} | ${TOKEN[r.auth]} | ${answers} | ${cell(r.doc ?? r.summary)}${errors ? `; ${errors}` : ''} |`;
}

/** The shapes the table names (a schema with a title), each once. */
function shapes(contracts: Contract[]): string[] {
  const seen = new Map<string, z.ZodType>();
  const visit = (s: z.ZodType) => {
    const t = unwrap(s);
    const title = z.globalRegistry.get(t)?.title;
    if (title && !seen.has(title)) seen.set(title, t);
    if (t instanceof z.ZodObject) for (const v of Object.values(t.shape as Record<string, z.ZodType>)) visit(v);
    if (t instanceof z.ZodArray) visit(t.element as z.ZodType);
  };
  for (const c of contracts)
    for (const r of Object.values(c) as RouteDef[]) for (const reply of Object.values(r.responses)) if (reply instanceof z.ZodType) visit(reply);
  return [...seen].map(([title, s]) => `- **${title}**: ${code(shape(s))}`);
}

const HEADER = ['| route | token | answers | what (and its own errors) |', '|---|---|---|---|'];

/** The generated part of the README, markers included. */
export function apiTable(): string {
  const rows = (c: Contract) => Object.entries(c).map(([k, r]) => row(k, r as RouteDef));
  return [
    BEGIN,
    '<!-- generated from sandbox-server/api.ts, sandbox-server/workshops/api.ts and sandbox-server/machines/api.ts by `npm run docs:api`; tests/unit/docs.test.ts fails when it is out of date -->',
    '',
    ...HEADER,
    ...rows(sessionRoutes),
    '',
    '**Workshops** (instructor routes need `Authorization: Bearer <admin token>`; learner tokens get 401 `UNAUTHORIZED`, an unknown workshop 404 `WORKSHOP_NOT_FOUND`)',
    '',
    ...HEADER,
    ...rows(workshopRoutes),
    '',
    "**Machines** (an operator's routes for planned maintenance on an Incus cluster, with the same admin token; 501 `NO_MACHINES` where sandboxes run on one machine, a single host or Docker)",
    '',
    ...HEADER,
    ...rows(machineRoutes),
    '',
    'Shapes named above:',
    '',
    ...shapes([sessionRoutes, workshopRoutes, machineRoutes]),
    '',
    'A `session` token is `Authorization: Bearer <token>` from `POST /api/sessions` (or `POST /api/join`): without one 401 `UNAUTHORIZED`; an unknown session or a wrong token 404 `SESSION_NOT_FOUND`; a session whose machine went away (an Incus cluster member lost) 503 `MACHINE_LOST` on every route but `DELETE`, the message saying so and to start a new sandbox (terminals close with 4410 after an error frame saying the same), and one ended because its machine was drained for maintenance 503 `MACHINE_MAINTENANCE` the same way. ' +
      'Any route with a body answers 400 `VALIDATION_FAILED` (the message names the field) and 413 `BODY_TOO_LARGE` (the rest of the body is read and dropped first, up to 64 MiB or 10 s, so that a client still sending gets this answer; the connection then closes); any route that reaches into a node 502/503 `SANDBOX_FAILED` or 503 `ENGINE_UNAVAILABLE` when the engine fails or is away; any route 500 `INTERNAL`.',
    END,
  ].join('\n');
}

export const withApiTable = (readme: string) => replaceBetween(readme, BEGIN, END, apiTable(), 'API table');

if (import.meta.main) rewriteReadme(withApiTable, 'API table');

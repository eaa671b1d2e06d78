// The OpenAPI document served at /api/openapi.json, made from the contracts (contract.ts) with zod's own JSON
// Schema output: what a route validates is what the document says, limits included.
import { z } from 'zod';
import { errorSchema, splitKey, type Auth, type Contract, type RouteDef } from './contract.ts';

type ZodInternals = { _zod: { def: { pattern?: unknown; checks?: { _zod: { def: { pattern?: unknown } } }[] } } };

/**
 * zod writes a regex's source into the JSON Schema and drops its flags, so /^ab$/i would be documented as
 * case-sensitive. Such a schema is refused here (write [Aa][Bb], or list the cases), so the document never
 * says less than the route checks. The u flag changes nothing a pattern in a JSON Schema could say otherwise.
 */
export function refuseRegexFlags({ zodSchema, path }: { zodSchema: unknown; path: (string | number)[] }) {
  const def = (zodSchema as ZodInternals)._zod.def;
  for (const p of [def.pattern, ...(def.checks ?? []).map((c) => c._zod.def.pattern)]) {
    if (p instanceof RegExp && p.flags.replace('u', ''))
      throw new Error(`The pattern ${p} at ${path.join('.') || 'the top'} has flags, which the JSON Schema (and so the API document) would drop.`);
  }
}

const jsonSchema = (s: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any', override: refuseRegexFlags }) as Record<string, unknown>;
  return rest;
};
const json = (schema: object) => ({ content: { 'application/json': { schema } } });

const SECURITY: Record<Auth, object[] | undefined> = {
  none: undefined,
  session: [{ bearer: [] }],
  admin: [{ bearer: [] }],
  metrics: [{ bearer: [] }],
  'admin-or-ticket': [{ bearer: [] }, { ticket: [] }],
  'session-subprotocol': [{ subprotocol: [] }],
  'admin-subprotocol-or-ticket': [{ subprotocol: [] }, { ticket: [] }],
};

const STATUS: Record<number, string> = {
  101: 'Switching protocols',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  400: 'Invalid input',
  401: 'Missing or wrong token',
  403: 'Refused',
  404: 'Not found',
  408: 'Timed out',
  409: 'Conflict',
  410: 'Gone',
  413: 'Too large',
  429: 'Rate limited',
  500: 'Server error',
  501: 'Not implemented',
  502: 'Engine failure',
  503: 'Unavailable',
};

function parameters(path: string, r: RouteDef) {
  const out: object[] = [];
  const params = r.params ? (jsonSchema(r.params, 'input') as { properties?: Record<string, object> }) : {};
  for (const m of path.matchAll(/:(\w+)/g)) {
    out.push({ name: m[1], in: 'path', required: true, schema: params.properties?.[m[1]] ?? { type: 'string' } });
  }
  if (r.query) {
    const q = jsonSchema(r.query, 'input') as { properties?: Record<string, { description?: string }>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      out.push({
        name,
        in: 'query',
        required: q.required?.includes(name) ?? false,
        schema,
        ...(schema.description ? { description: schema.description } : {}),
      });
    }
  }
  return out;
}

function operation(path: string, r: RouteDef) {
  const responses: Record<string, object> = {};
  for (const [status, reply] of Object.entries(r.responses)) {
    const description = STATUS[Number(status)] ?? 'OK';
    if (reply === null || reply === undefined) responses[status] = { description };
    else if ('media' in reply) responses[status] = { description, content: { [reply.media]: {} } };
    else responses[status] = { description, ...json(jsonSchema(reply, 'output')) };
  }
  for (const [status, codes] of Object.entries(r.errors)) {
    responses[status] = { description: `${STATUS[Number(status)] ?? 'Error'}: ${codes?.join(', ')}`, ...json({ $ref: '#/components/schemas/Error' }) };
  }
  return {
    summary: r.summary,
    ...(SECURITY[r.auth] ? { security: SECURITY[r.auth] } : {}),
    ...(r.upgrade ? { description: 'A WebSocket upgrade.' } : {}),
    parameters: parameters(path, r),
    ...(r.body ? { requestBody: { required: true, ...json(jsonSchema(r.body, 'input')) } } : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of these contracts, paths in the order the contracts list them. */
export function openapiDocument(contracts: Contract[]) {
  const paths: Record<string, Record<string, object>> = {};
  for (const c of contracts) {
    for (const [key, r] of Object.entries(c) as [string, RouteDef][]) {
      const { method, path } = splitKey(key);
      const p = path.replace(/:(\w+)/g, '{$1}');
      paths[p] = { ...paths[p], [method.toLowerCase()]: operation(path, r) };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth sandbox server',
      version: '0.1.0',
      description:
        'Sessions, terminals, checks and workshops for Berth learners. Errors are always {"error": {"code", "message", "requestId"}}. Terminal protocol (WebSocket, binary frames): the "Terminal protocol" section of the README.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        ticket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'a single-use instructor ticket (POST /api/workshops/{id}/tickets)' },
        subprotocol: { type: 'apiKey', in: 'header', name: 'Sec-WebSocket-Protocol', description: 'berth.v1 and bearer.<token>' },
      },
      schemas: { Error: jsonSchema(errorSchema, 'output') },
    },
    paths,
  };
}

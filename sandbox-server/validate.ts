// Request bodies, queries and path parameters checked against zod schemas; every problem becomes one 400
// VALIDATION_FAILED whose message names the field (contract.ts mounts every route with these).
import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError } from './errors.ts';

function check<T>(schema: z.ZodType<T, unknown>, raw: unknown, whole = ''): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ApiError(400, 'VALIDATION_FAILED', r.error.issues.map((i) => `${i.path.join('.') || whole}: ${i.message}`).join('; '));
  return r.data;
}

export const parseQuery = <T>(c: Context, schema: z.ZodType<T, unknown>): T => check(schema, c.req.query());

/** Path parameters that are more than strings (a port number); the message names the parameter. */
export const parseParams = <T>(c: Context, schema: z.ZodType<T, unknown>): T => check(schema, c.req.param());

export async function parseJson<T>(c: Context, schema: z.ZodType<T, unknown>): Promise<T> {
  let raw: unknown;
  const text = await c.req.text();
  try {
    raw = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(400, 'VALIDATION_FAILED', 'The request body is not valid JSON.');
  }
  return check(schema, raw, 'body');
}

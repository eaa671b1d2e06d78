// Request bodies and queries checked against zod schemas; every problem becomes one 400 VALIDATION_FAILED
// whose message names the field (the core routes in app.ts and the features' routes use the same).
import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError } from './errors.ts';

export function parseQuery<T>(c: Context, schema: z.ZodType<T, unknown>): T {
  const r = schema.safeParse(c.req.query());
  if (!r.success) throw new ApiError(400, 'VALIDATION_FAILED', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

export async function parseJson<T>(c: Context, schema: z.ZodType<T, unknown>): Promise<T> {
  let raw: unknown;
  const text = await c.req.text();
  try { raw = text === '' ? {} : JSON.parse(text); } catch {
    throw new ApiError(400, 'VALIDATION_FAILED', 'The request body is not valid JSON.');
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new ApiError(400, 'VALIDATION_FAILED', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

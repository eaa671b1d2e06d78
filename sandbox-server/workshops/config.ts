// Workshop settings from the environment, validated like the server's own (a bad value names the variable).
import { z } from 'zod';
import { ConfigError } from '../config.ts';

const schema = z.object({
  BERTH_ADMIN_TOKEN_SHA256: z.string().default('')
    .refine((s) => s.split(',').map((x) => x.trim()).filter(Boolean).every((h) => /^[0-9a-f]{64}$/i.test(h)), 'comma-separated SHA-256 hex digests of instructor tokens')
    .describe('instructor (admin) tokens, as SHA-256 hex digests; besides these, <state>/admin-tokens is read'),
  BERTH_WORKSHOP_PREWARM_MIN: z.coerce.number().min(0).max(24 * 60).default(15).describe('minutes before a workshop starts when the warm pool begins to grow toward its expected head count'),
  BERTH_JOINS_PER_MIN: z.coerce.number().int().min(1).max(100_000).default(60).describe('joins per client address per minute (each may take a sandbox; a class behind one NAT shares an address, and a workshop\'s capacity bounds the rest)'),
  BERTH_JOIN_FAILURES_PER_MIN: z.coerce.number().int().min(1).max(100_000).default(100).describe('wrong join codes per client address per minute before joins from it are refused (a class behind one NAT shares an address; 31^6 codes stay out of reach)'),
});

export type WorkshopConfig = { adminHashes: string[]; prewarmLeadMs: number; joinFailuresPerMin: number; joinsPerMin: number };

export function loadWorkshopConfig(env: NodeJS.ProcessEnv): WorkshopConfig {
  const r = schema.safeParse(env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${String(i.path[0])}: ${i.message} (${env[String(i.path[0])] ?? 'unset'})`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return {
    adminHashes: r.data.BERTH_ADMIN_TOKEN_SHA256.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean),
    prewarmLeadMs: r.data.BERTH_WORKSHOP_PREWARM_MIN * 60_000,
    joinFailuresPerMin: r.data.BERTH_JOIN_FAILURES_PER_MIN,
    joinsPerMin: r.data.BERTH_JOINS_PER_MIN,
  };
}

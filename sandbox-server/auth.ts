// Session tokens: 256 random bits shown once to the client; only their SHA-256 is stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const newToken = () => randomBytes(32).toString('base64url');
export const newId = () => randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').toLowerCase();
export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export function tokenMatches(token: string | undefined, hash: string): boolean {
  if (!token) return false;
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+([A-Za-z0-9_-]{20,200})$/.exec(header ?? '');
  return m?.[1];
}

/** WebSocket clients cannot set headers: the token travels as a subprotocol `bearer.<token>`. */
export function tokenFromProtocols(header: string | undefined): string | undefined {
  for (const p of (header ?? '').split(',').map((s) => s.trim())) {
    if (p.startsWith('bearer.')) return p.slice('bearer.'.length);
  }
  return undefined;
}

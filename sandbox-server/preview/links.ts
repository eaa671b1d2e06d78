// Preview addresses and their credentials. Two schemes reach the same port of a learner's node:
//   host:  http://<session>-<node>-<port>.<preview domain>:<server port>/   (own origin: preferred)
//   path:  http://<server>/p/<session>[.<key>]/<node>/<port>/                (fallback, Berth's origin)
// Host scheme: a ticket (short-lived, signed, single use, bound to one port) travels in the link the
// workbench opens; the server swaps it for a cookie on that preview's own host.
// Path scheme: every answer is sandboxed into an opaque origin (preview/proxy.ts), which sends no cookies
// on its subresource requests, so the owner's link carries a key bound to that one port in its base path
// instead. Neither is the session token, which never appears in a URL.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type Target = {
  sessionId: string;
  node: string;
  port: number;
  scheme: 'host' | 'path';
  rest: string;
  base: string;
  /** The path scheme's per-port key, when the link carried one. */
  key?: string;
};

const PATH_RE = /^\/p\/([a-z0-9]{4,40})(?:\.([A-Za-z0-9_-]{22}))?\/(node[0-9]{1,2})\/([0-9]{1,5})(\/.*)?$/;
const HOST_RE = /^([a-z0-9]{4,40})-(node[0-9]{1,2})-([0-9]{1,5})$/;
export const TICKET_PARAM = 'berth_ticket';
export const COOKIE = 'berth_preview';
const TICKET_MS = 10 * 60_000;

const validPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;

/** Which preview (if any) a request addresses. `rest` is the path and query to send to the app. */
export function parseTarget(hostHeader: string | undefined, rawUrl: string, domain: string | null): Target | null {
  const url = new URL(rawUrl, 'http://preview.invalid');
  const host = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '');
  if (domain && host.endsWith(`.${domain}`)) {
    const m = HOST_RE.exec(host.slice(0, -(domain.length + 1)));
    if (m && validPort(Number(m[3]))) {
      return { sessionId: m[1], node: m[2], port: Number(m[3]), scheme: 'host', rest: url.pathname + url.search, base: '/' };
    }
    return null;
  }
  const m = PATH_RE.exec(url.pathname);
  if (!m || !validPort(Number(m[4]))) return null;
  const base = `/p/${m[1]}${m[2] ? `.${m[2]}` : ''}/${m[3]}/${m[4]}/`;
  return { sessionId: m[1], node: m[3], port: Number(m[4]), scheme: 'path', rest: (m[5] ?? '/') + url.search, base, ...(m[2] ? { key: m[2] } : {}) };
}

/** Removes the ticket from a path+query, keeping everything else as it was. */
export function withoutTicket(rest: string): string {
  const [path, query = ''] = rest.split(/\?(.*)/s, 2);
  const kept = query.split('&').filter((kv) => kv && !kv.startsWith(`${TICKET_PARAM}=`));
  return kept.length ? `${path}?${kept.join('&')}` : path;
}

export function ticketFrom(rest: string): string | null {
  const q = rest.includes('?') ? rest.slice(rest.indexOf('?') + 1) : '';
  return new URLSearchParams(q).get(TICKET_PARAM);
}

export class PreviewKeys {
  secret: Buffer;
  /** Tickets already swapped for a cookie, until they would have expired anyway. */
  spent = new Map<string, number>();
  constructor(secret: Buffer) {
    this.secret = secret;
  }

  mac(text: string) {
    return createHmac('sha256', this.secret).update(text).digest('base64url');
  }

  ticket(sessionId: string, node: string, port: number, now: number) {
    const exp = now + TICKET_MS;
    return `${exp.toString(36)}.${this.mac(`ticket:${sessionId}:${node}:${port}:${exp}`)}`;
  }

  ticketValid(ticket: string | null, sessionId: string, node: string, port: number, now: number): boolean {
    const m = /^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{43})$/.exec(ticket ?? '');
    if (!m) return false;
    const exp = parseInt(m[1], 36);
    return exp > now && !this.spent.has(m[2]) && same(m[2], this.mac(`ticket:${sessionId}:${node}:${port}:${exp}`));
  }

  /** Validates and spends a ticket: the same link opens a preview once (a copied or logged URL is worthless). */
  spendTicket(ticket: string | null, sessionId: string, node: string, port: number, now: number): boolean {
    if (!this.ticketValid(ticket, sessionId, node, port, now)) return false;
    for (const [k, exp] of this.spent) if (exp <= now) this.spent.delete(k);
    const [exp, mac] = ticket!.split('.');
    this.spent.set(mac, parseInt(exp, 36));
    return true;
  }

  cookieValue(sessionId: string, node: string, port: number) {
    return this.mac(`cookie:${sessionId}:${node}:${port}`);
  }

  cookieValid(cookieHeader: string | undefined, sessionId: string, node: string, port: number): boolean {
    const want = this.cookieValue(sessionId, node, port);
    return cookies(cookieHeader).some(([k, v]) => k === COOKIE && same(v, want));
  }

  /** The path scheme's key for one port of one node of one session (132 bits). */
  pathKey(sessionId: string, node: string, port: number) {
    return this.mac(`path:${sessionId}:${node}:${port}`).slice(0, 22);
  }

  pathKeyValid(key: string | undefined, sessionId: string, node: string, port: number) {
    return !!key && same(key, this.pathKey(sessionId, node, port));
  }
}

function same(a: string, b: string) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function cookies(header: string | undefined): [string, string][] {
  return (header ?? '')
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
    });
}

/** The Cookie header the app should see: Berth's own preview cookie removed. */
export function appCookies(header: string | undefined): string | undefined {
  const kept = cookies(header)
    .filter(([k]) => k !== COOKIE)
    .map(([k, v]) => `${k}=${v}`);
  return kept.length ? kept.join('; ') : undefined;
}

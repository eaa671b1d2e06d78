// The instructor's token in this browser, and API calls made with it. The token stays in this tab
// (sessionStorage) unless the instructor asks to be remembered on this device (localStorage).
import { ApiFailure } from '../api.ts';
import { call, type CallOptions, type Reply, type RouteKey } from '../client.ts';

const KEY = 'berth.instructorToken';

export function adminToken(): string | null {
  try {
    return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string, remember: boolean) {
  try {
    sessionStorage.setItem(KEY, token);
    if (remember) localStorage.setItem(KEY, token);
    else localStorage.removeItem(KEY);
  } catch {
    /* private mode: the token lasts for this page */
  }
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  } catch {
    /* nothing kept */
  }
}

/** An instructor route of the contract, with the admin token this page holds. */
export const adminApi = <K extends RouteKey>(key: K, o: Omit<CallOptions<K>, 'token'>) => call(key, { ...o, token: adminToken() } as CallOptions<K>);

/** A one-minute, single-use ticket: what EventSource, downloads and the terminal use instead of a header. */
export const ticket = async (workshopId: string) => (await adminApi('POST /api/workshops/:id/tickets', { params: { id: workshopId } })).ticket;

export const describe = (err: unknown) => (err instanceof ApiFailure ? err.message : 'Something went wrong in this page.');

export const isUnauthorized = (err: unknown) => err instanceof ApiFailure && err.code === 'UNAUTHORIZED';

/** A workshop as the list shows it; the single-workshop routes add the warm pool. */
export type Workshop = Reply<'GET /api/workshops'>['workshops'][number] & { pool?: Reply<'POST /api/workshops/:id/prewarm'>['pool'] };
export type LearnerRow = Reply<'GET /api/workshops/:id'>['learnerRows'][number];

export const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
export const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export function when(iso: string) {
  return new Date(iso).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' });
}

export function ago(iso: string | null, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}

export const STATE_LABEL: Record<Workshop['state'], string> = { scheduled: 'Scheduled', open: 'Open for joining', running: 'Running', ended: 'Ended' };

/** A small element builder: text always goes in as text, never as HTML (names come from learners). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

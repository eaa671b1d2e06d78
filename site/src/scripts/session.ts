// The learner's sandbox session for one lesson: created through the API, remembered in localStorage
// (id and token) so a reload or a second visit reattaches to the same sandbox.
import { api } from './api.ts';
import { isRecord, readJson, removeKey, writeJson } from './storage.ts';

export type Session = {
  id: string;
  token: string;
  lesson: string;
  expiresAt: string;
  nodes: string[];
  /** Open terminal tabs as "node/tab", in tab order. */
  tabs: string[];
  /** Set by the workshop join flow: progress is then also sent to the instructor. */
  workshop?: string;
  /** The workshop's join code: the way back to it when the sandbox ends. */
  workshopCode?: string;
};

export type SessionView = {
  id: string;
  expiresAt: string;
  /** null for a workshop's session: the workshop keeps it alive until it ends. */
  idleExpiresAt: string | null;
  nodes: { name: string; state: string }[];
};

const key = (lesson: string) => `berth.session.${lesson}`;
const TAB = /^node\d+\/[a-z0-9-]{1,16}$/i;

function parse(v: unknown): Session | null {
  if (!isRecord(v) || typeof v.id !== 'string' || typeof v.token !== 'string' || typeof v.lesson !== 'string') return null;
  const nodes = Array.isArray(v.nodes) ? v.nodes.filter((n): n is string => typeof n === 'string' && /^node\d+$/.test(n)) : [];
  const tabs = Array.isArray(v.tabs) ? v.tabs.filter((t): t is string => typeof t === 'string' && TAB.test(t)) : [];
  return {
    id: v.id, token: v.token, lesson: v.lesson,
    expiresAt: typeof v.expiresAt === 'string' ? v.expiresAt : new Date(0).toISOString(),
    nodes: nodes.length ? nodes : ['node1'],
    tabs,
    ...(typeof v.workshop === 'string' ? { workshop: v.workshop } : {}),
    ...(typeof v.workshopCode === 'string' && /^[A-Z0-9]{4,20}$/.test(v.workshopCode) ? { workshopCode: v.workshopCode } : {}),
  };
}

export const loadSession = (lesson: string) => readJson(key(lesson), parse);
export const saveSession = (s: Session) => writeJson(key(s.lesson), s);
export const forgetSession = (lesson: string) => removeKey(key(lesson));

export async function createSession(lesson: string, nodes: number): Promise<Session> {
  const r = await api<{ id: string; token: string; expiresAt: string; nodes: { name: string }[] }>('POST', '/api/sessions', { json: { lesson, nodes } });
  const s: Session = { id: r.id, token: r.token, lesson, expiresAt: r.expiresAt, nodes: r.nodes.map((n) => n.name), tabs: r.nodes.map((n) => `${n.name}/1`) };
  saveSession(s);
  return s;
}

export const path = (s: Session, rest = '') => `/api/sessions/${encodeURIComponent(s.id)}${rest}`;

export const fetchSession = (s: Session) => api<SessionView>('GET', path(s), { token: s.token });
export const extendSession = (s: Session) => api<{ expiresAt: string; idleExpiresAt: string | null }>('POST', path(s, '/extend'), { token: s.token });
export const deleteSession = (s: Session) => api<void>('DELETE', path(s), { token: s.token });
export const addNode = (s: Session) => api<{ name: string }>('POST', path(s, '/nodes'), { token: s.token });
/** Workshop sessions only: the server rebuilds the sandbox under the same session. */
export const resetWorkshopSandbox = (s: Session) => api<{ sandbox: string }>('POST', path(s, '/workshop/reset'), { token: s.token });

export type CheckResult = { id: string; passed: boolean; message: string; detail?: string };
export const runCheck = (s: Session, checkId: string) =>
  api<CheckResult>('POST', path(s, `/checks/${encodeURIComponent(checkId)}`), { token: s.token, json: { lesson: s.lesson } });

export type Port = { node: string; port: number; container: string; image: string; url: string; pathUrl?: string; shared: boolean };
export const listPorts = (s: Session) => api<{ ports: Port[] }>('GET', path(s, '/ports'), { token: s.token });

// The learner's sandbox session for one lesson: created through the API, remembered in localStorage
// (id and token) so a reload or a second visit reattaches to the same sandbox.
import { call, type Reply } from './client.ts';
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

/** idleExpiresAt is null for a workshop's session: the workshop keeps it alive until it ends. */
export type SessionView = Reply<'GET /api/sessions/:id'>;

const key = (lesson: string) => `berth.session.${lesson}`;
const TAB = /^node\d+\/[a-z0-9-]{1,16}$/i;

function parse(v: unknown): Session | null {
  if (!isRecord(v) || typeof v.id !== 'string' || typeof v.token !== 'string' || typeof v.lesson !== 'string') return null;
  const nodes = Array.isArray(v.nodes) ? v.nodes.filter((n): n is string => typeof n === 'string' && /^node\d+$/.test(n)) : [];
  const tabs = Array.isArray(v.tabs) ? v.tabs.filter((t): t is string => typeof t === 'string' && TAB.test(t)) : [];
  return {
    id: v.id,
    token: v.token,
    lesson: v.lesson,
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
  const r = await call('POST /api/sessions', { body: { lesson, nodes } });
  const s: Session = { id: r.id, token: r.token, lesson, expiresAt: r.expiresAt, nodes: r.nodes.map((n) => n.name), tabs: r.nodes.map((n) => `${n.name}/1`) };
  saveSession(s);
  return s;
}

const own = (s: Session) => ({ params: { id: s.id }, token: s.token });
export const fetchSession = (s: Session) => call('GET /api/sessions/:id', own(s));
export const extendSession = (s: Session) => call('POST /api/sessions/:id/extend', own(s));
export const deleteSession = (s: Session) => call('DELETE /api/sessions/:id', own(s));
export const addNode = (s: Session) => call('POST /api/sessions/:id/nodes', own(s));
/** Workshop sessions only: the server rebuilds the sandbox under the same session. */
export const resetWorkshopSandbox = (s: Session) => call('POST /api/sessions/:id/workshop/reset', own(s));

export type CheckResult = Reply<'POST /api/sessions/:id/checks/:checkId'>;
export const runCheck = (s: Session, checkId: string) =>
  call('POST /api/sessions/:id/checks/:checkId', { params: { id: s.id, checkId }, token: s.token, body: { lesson: s.lesson } });

export type Port = Reply<'GET /api/sessions/:id/ports'>['ports'][number];
export const listPorts = (s: Session) => call('GET /api/sessions/:id/ports', own(s));

// Previews: HTTP and WebSocket traffic from the browser to a port of a learner's node, through the server.
// Only the session's owner (cookie from a ticket, or its bearer token) gets through, unless the learner
// shared that port. The node's port is reached through the provider (openPort: on the session's private bridge,
// or relayed by the engine where this server has no route to it); nothing else is proxied.
import { Agent, type ClientRequest, request, validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { bearer, tokenMatches } from '../auth.ts';
import { ApiError, errorBody, machineLost } from '../errors.ts';
import type { SandboxProvider } from '../engine/provider.ts';
import type { SandboxManager } from '../sandboxes/manager.ts';
import { appCookies, COOKIE, parseTarget, type PreviewKeys, ticketFrom, withoutTicket, type Target } from './links.ts';

// The learner engine's own API (remote daemon lessons) must not become reachable from a browser link.
export const BLOCKED_PORTS = new Set([2375, 2376]);
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization']);
// Previews on the path scheme live on Berth's own origin: a sandboxed, opaque origin (no allow-same-origin,
// ever) keeps their scripts away from Berth's storage and API.
const SANDBOX_CSP = 'sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads allow-pointer-lock';

/**
 * Node's HTTP agent handles a connection as a net.Socket (keep-alive probes, ref/unref, an idle timeout): a
 * provider's stream that is not one gets what it lacks, as no-ops (Incus's relay has its own idle timeout).
 */
function socketLike(conn: Duplex): Duplex {
  const c = conn as Duplex & Partial<Pick<Socket, 'setKeepAlive' | 'ref' | 'unref' | 'setTimeout'>>;
  c.setKeepAlive ??= () => c as Socket;
  c.ref ??= () => c as Socket;
  c.unref ??= () => c as Socket;
  c.setTimeout ??= () => c as Socket;
  return c;
}

/** A cookie the app sets stays on the preview's own host: its Domain attribute is removed. */
export function hostOnlyCookie(cookie: string): string {
  return cookie
    .split(';')
    .filter((part) => !/^\s*domain\s*=/i.test(part))
    .join(';');
}

export type PreviewDeps = {
  manager: SandboxManager;
  provider: SandboxProvider;
  keys: PreviewKeys;
  /** Parent domain of host-scheme previews, or null for the path scheme only. */
  domain: string | null;
  secureCookies: boolean;
  log: { warn: (o: object, m: string) => void };
};

type Allowed = { target: Target; shared: boolean; setCookie?: string };

export function createPreview(deps: PreviewDeps) {
  const { manager, keys } = deps;
  const addresses = new Map<string, { ip: string; at: number }>();

  /** A connection to the target's port (provider.openPort). */
  const open = (t: Target) => deps.provider.openPort(t.sessionId, t.node, t.port);

  /**
   * Plain requests to one target (session, node, port) keep their connections alive between requests, as Node's
   * global agent did for the node's address: a relayed connection costs an Incus exec to make (tests/bench preview).
   * Node's HTTP client stays on this side, over whatever stream the provider connects.
   */
  const agents = new Map<string, Agent>();
  function agentFor(t: Target): Agent {
    const key = `${t.sessionId}/${t.node}/${t.port}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, scheduling: 'lifo', timeout: 5_000, maxFreeSockets: 4 });
      agent.createConnection = (_o, done) => {
        open(t).then(
          (conn) => done?.(null, socketLike(conn)),
          (err: Error) => done?.(err, null as never),
        );
        return undefined;
      };
      agents.set(key, agent);
    }
    return agent;
  }

  /** The node's address (for Location rewriting), which also tells that the node is there. */
  async function nodeIp(t: Target) {
    const key = `${t.sessionId}/${t.node}`;
    const hit = addresses.get(key);
    if (hit && Date.now() - hit.at < 30_000) return hit.ip;
    const ip = await deps.provider.nodeAddress(t.sessionId, t.node);
    if (!ip) throw new ApiError(502, 'PREVIEW_UNREACHABLE', `Node ${t.node} has no address right now.`);
    addresses.set(key, { ip, at: Date.now() });
    return ip;
  }

  /** Decides whether this request may reach its preview; throws ApiError when not. */
  function authorize(t: Target, req: IncomingMessage): Allowed {
    const s = manager.get(t.sessionId);
    if (!s || manager.expired(s)) throw new ApiError(404, 'SESSION_NOT_FOUND', 'This sandbox no longer exists.');
    if (manager.lostMember(s.id)) throw machineLost();
    if (!s.nodes.includes(t.node)) throw new ApiError(404, 'NODE_NOT_FOUND', `This session has no node ${t.node}.`);
    if (BLOCKED_PORTS.has(t.port)) throw new ApiError(403, 'PORT_NOT_ALLOWED', `Port ${t.port} is the engine's own API and cannot be previewed.`);
    const owner = (): Allowed | null => {
      if (t.key !== undefined) {
        // A key in the path opens this one port only; a wrong key is refused even where the port is shared.
        if (!keys.pathKeyValid(t.key, s.id, t.node, t.port))
          throw new ApiError(401, 'UNAUTHORIZED', 'This preview link is not valid. Open it again from your Berth workbench.');
        return { target: t, shared: false };
      }
      if (t.scheme === 'host' && keys.cookieValid(req.headers.cookie, s.id, t.node, t.port)) return { target: t, shared: false };
      if (tokenMatches(bearer(req.headers.authorization), s.tokenHash)) return { target: t, shared: false };
      if (t.scheme === 'host' && keys.spendTicket(ticketFrom(t.rest), s.id, t.node, t.port, Date.now())) {
        const attrs = ['Path=/', 'HttpOnly', 'SameSite=Lax', ...(deps.secureCookies ? ['Secure'] : [])];
        return { target: t, shared: false, setCookie: `${COOKIE}=${keys.cookieValue(s.id, t.node, t.port)}; ${attrs.join('; ')}` };
      }
      return null;
    };
    const allowed = owner();
    if (allowed) {
      // Only the owner's own use keeps a session alive (manager.touch writes at most once a second): a stranger
      // requesting a preview address, or visitors of a shared port, must not hold a sandbox open.
      manager.touch(s.id);
      return allowed;
    }
    if (manager.isShared(s.id, t.node, t.port)) return { target: t, shared: true };
    throw new ApiError(401, 'UNAUTHORIZED', 'Open this preview from your Berth workbench (its link signs you in), or ask the learner to share the port.');
  }

  function fail(res: ServerResponse, err: unknown) {
    const e = err instanceof ApiError ? err : new ApiError(502, 'PREVIEW_UNREACHABLE', 'The preview could not be reached.');
    if (res.headersSent) return res.destroy();
    res.writeHead(e.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(errorBody(e.code, e.message, '')));
  }

  function forwardHeaders(req: IncomingMessage, a: Allowed) {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP.has(k) || k === 'cookie' || k === 'authorization') continue;
      out[k] = v;
    }
    const cookie = appCookies(req.headers.cookie);
    if (cookie) out.cookie = cookie;
    // The session token is Berth's, not the app's: it is only forwarded if it is not the session's.
    if (req.headers.authorization && !bearer(req.headers.authorization)) out.authorization = req.headers.authorization;
    out['x-forwarded-host'] = req.headers.host ?? '';
    out['x-forwarded-proto'] = deps.secureCookies ? 'https' : 'http';
    if (a.target.scheme === 'path') out['x-forwarded-prefix'] = a.target.base.slice(0, -1);
    return out;
  }

  /** Redirects the app sends to its own root must stay inside the preview on the path scheme. */
  function location(value: string, a: Allowed, ip: string) {
    const t = a.target;
    if (t.scheme !== 'path') return value;
    if (value.startsWith('/') && !value.startsWith('//')) return t.base + value.slice(1);
    try {
      const u = new URL(value);
      if ([ip, 'localhost', '127.0.0.1', t.node].includes(u.hostname) && Number(u.port || 80) === t.port) return t.base + (u.pathname + u.search).slice(1);
    } catch {
      /* relative, kept */
    }
    return value;
  }

  /** The status and headers to send the browser, or null when the app's answer cannot be relayed. */
  function responseHead(r: IncomingMessage, a: Allowed, ip: string): { status: number; headers: Record<string, string | string[]> } | null {
    const status = r.statusCode ?? 0;
    // A final answer is 200-599; 1xx arrive as 'information' events and a 101 as 'upgrade', never here.
    if (!Number.isInteger(status) || status < 200 || status > 599) return null;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(r.headers)) {
      if (v === undefined || HOP.has(k)) continue;
      try {
        validateHeaderName(k);
        for (const one of [v].flat()) validateHeaderValue(k, one);
      } catch {
        return null;
      }
      headers[k] = v;
    }
    if (typeof r.headers.location === 'string') headers.location = location(r.headers.location, a, ip);
    if (a.target.scheme === 'path') {
      // Path-scheme previews share Berth's origin: an opaque (sandboxed) origin keeps their scripts away from
      // Berth's storage, cookies and API; their cookies must not land on Berth's origin, nor their key in a Referer.
      headers['content-security-policy'] = SANDBOX_CSP;
      headers['referrer-policy'] = 'no-referrer';
      delete headers['set-cookie'];
    } else if (headers['set-cookie']) {
      // Host-scheme previews have their own origin; a Domain attribute would still reach Berth's parent domain.
      headers['set-cookie'] = [headers['set-cookie']].flat().map(hostOnlyCookie);
    }
    return { status, headers };
  }

  async function http(req: IncomingMessage, res: ServerResponse, t: Target) {
    let a: Allowed;
    try {
      a = authorize(t, req);
    } catch (err) {
      return fail(res, err);
    }
    if (a.setCookie) {
      // The ticket is spent: the cookie carries the sign-in from here, and the URL is clean again.
      res.writeHead(303, { location: withoutTicket(t.rest), 'set-cookie': a.setCookie, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      return res.end();
    }
    if (t.scheme === 'path' && t.rest === '/' && !req.url?.split('?')[0].endsWith('/')) {
      // Relative links in the app only resolve under the preview when its root ends with a slash.
      res.writeHead(308, { location: t.base });
      return res.end();
    }
    let ip: string;
    try {
      ip = await nodeIp(t);
    } catch (err) {
      return fail(res, err);
    }
    const headers = forwardHeaders(req, a);
    const bodyless = (req.method === 'GET' || req.method === 'HEAD') && !req.headers['content-length'] && !req.headers['transfer-encoding'];
    let current: ClientRequest | undefined;
    res.on('close', () => current?.destroy());
    send(true);

    function send(mayRetry: boolean) {
      const up = request({ host: ip, port: t.port, method: req.method, path: t.rest, headers, agent: agentFor(t) });
      current = up;
      up.setTimeout(30_000);
      relay(up, (err) => {
        // A kept-alive connection the app closed just as it was taken again: once more on a new one, as browsers
        // do, when nothing of the request is lost by it (no body).
        if (!(mayRetry && bodyless && up.reusedSocket && !res.headersSent && (err as NodeJS.ErrnoException).code === 'ECONNRESET')) return false;
        send(false);
        return true;
      });
      if (bodyless) up.end();
      else req.pipe(up);
    }

    /** The app's answer to the browser, or the reason there is none; `retried` may take a failure over. */
    function relay(up: ClientRequest, retried: (err: Error) => boolean) {
      up.on('response', (r) => {
        // Anything the app sends is untrusted: a status or header Node refuses to write must cost this one
        // request (502), never the process (writeHead throws synchronously inside this event handler).
        const bad = () => {
          r.destroy();
          deps.log.warn({ session: t.sessionId, node: t.node, port: t.port, status: r.statusCode }, 'preview: malformed upstream answer');
          fail(res, new ApiError(502, 'PREVIEW_BAD_RESPONSE', `The app on port ${t.port} of ${t.node} sent an answer that is not valid HTTP.`));
        };
        const out = responseHead(r, a, ip);
        if (!out) return bad();
        try {
          res.writeHead(out.status, out.headers);
        } catch {
          return bad();
        }
        r.pipe(res);
        r.on('error', () => res.destroy());
      });
      // A 101 to a plain request is not an answer this request can use.
      up.on('upgrade', (r, sock) => {
        sock.destroy();
        r.destroy();
        fail(res, new ApiError(502, 'PREVIEW_BAD_RESPONSE', `The app on port ${t.port} of ${t.node} switched protocols on a plain request.`));
      });
      up.on('timeout', () => up.destroy(new Error('timeout')));
      up.on('error', (err: NodeJS.ErrnoException) => {
        if (retried(err)) return;
        addresses.delete(`${t.sessionId}/${t.node}`);
        if (err instanceof ApiError) return fail(res, err);
        fail(
          res,
          new ApiError(
            502,
            'PREVIEW_UNREACHABLE',
            err.code === 'ECONNREFUSED'
              ? `Nothing answers on port ${t.port} of ${t.node}. Is the container running, with the port published (-p ${t.port}:…)?`
              : `Port ${t.port} of ${t.node} did not answer (${err.code ?? err.message}).`,
          ),
        );
      });
    }
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, t: Target) {
    const refuse = (err: unknown) => {
      const e = err instanceof ApiError ? err : new ApiError(502, 'PREVIEW_UNREACHABLE', 'The preview could not be reached.');
      const body = JSON.stringify(errorBody(e.code, e.message, ''));
      socket.end(
        `HTTP/1.1 ${e.status} Preview\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    // The browser may leave while the connection is being made: what it then brings is ended at once.
    let upstream: Duplex | undefined;
    let gone = false;
    socket.on('error', () => upstream?.destroy());
    socket.on('close', () => {
      gone = true;
      upstream?.destroy();
    });
    let a: Allowed;
    try {
      a = authorize(t, req);
      await nodeIp(t);
      upstream = await open(t);
    } catch (err) {
      // Only Berth's own refusals are told; a port that does not answer is the generic 502, as ever.
      return refuse(err instanceof ApiError ? err : null);
    }
    const up = upstream;
    if (gone) {
      up.destroy();
      return;
    }
    const headers = forwardHeaders(req, a);
    // An upgrade keeps its Connection/Upgrade pair, which forwardHeaders drops as hop-by-hop for plain requests.
    const lines = [`${req.method} ${withoutTicket(t.rest)} HTTP/1.1`, 'Connection: Upgrade', `Upgrade: ${req.headers.upgrade ?? 'websocket'}`];
    for (const [k, v] of Object.entries(headers)) for (const one of [v].flat()) lines.push(`${k}: ${one}`);
    up.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) up.write(head);
    up.pipe(socket).pipe(up);
    up.on('error', () => (socket.writable && !up.readableEnded ? refuse(null) : socket.destroy()));
  }

  return {
    /** The preview this request addresses, or null for Berth's own routes. */
    match: (req: IncomingMessage) => parseTarget(req.headers.host, req.url ?? '/', deps.domain),
    http,
    upgrade,
    forget: (sessionId: string) => {
      for (const k of addresses.keys()) if (k.startsWith(`${sessionId}/`)) addresses.delete(k);
      for (const [k, agent] of agents) {
        if (!k.startsWith(`${sessionId}/`)) continue;
        agent.destroy();
        agents.delete(k);
      }
    },
    /**
     * Links the workbench opens: the host scheme when a preview domain is set, and the path scheme always.
     * An unshared host link carries a single-use ticket for this port; an unshared path link its port key.
     */
    links(origin: URL, sessionId: string, node: string, port: number, shared: boolean) {
      const ticket = shared ? '' : `?berth_ticket=${keys.ticket(sessionId, node, port, Date.now())}`;
      const key = shared ? '' : `.${keys.pathKey(sessionId, node, port)}`;
      const pathUrl = `${origin.origin}/p/${sessionId}${key}/${node}/${port}/`;
      const url = deps.domain ? `${origin.protocol}//${sessionId}-${node}-${port}.${deps.domain}${origin.port ? `:${origin.port}` : ''}/${ticket}` : pathUrl;
      return { url, pathUrl };
    },
  };
}

export type Preview = ReturnType<typeof createPreview>;

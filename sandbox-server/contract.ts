// The HTTP API's one contract. Each feature lists its routes in an api.ts (the core's sandbox-server/api.ts,
// sandbox-server/workshops/api.ts), keyed 'METHOD /path/:param', with zod schemas for what comes in and goes out
// and the error codes each may answer. From that one list: the routes are mounted with their validation
// (mountContract below), the OpenAPI document is made (openapi.ts), the README's API table is written
// (api-doc.ts), and the site's client takes its types (site/src/scripts/client.ts, type-only imports).
import type { Context, Env as HonoEnv, Hono, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { ErrorCode } from './errors.ts';
import { parseJson, parseQuery, parseParams } from './validate.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Who may call a route: anyone, a session's token, an instructor's admin token (or, where said, a ticket), a metrics token. */
export type Auth = 'none' | 'session' | 'admin' | 'admin-or-ticket' | 'metrics' | 'session-subprotocol' | 'admin-subprotocol-or-ticket';

/** A body that is not JSON (an event stream, a download), named by its media type. */
export type Media = { media: string };
/** What one success status carries: JSON of this schema, another media type, or nothing (204). */
export type Reply = z.ZodType | Media | null;

/** The error codes a route may answer, by status (every route may also answer 500 INTERNAL). */
export type Errors = Partial<Record<ContentfulStatusCode, readonly ErrorCode[]>>;

export type RouteDef = {
  summary: string;
  /** One line for the README's table; the summary when absent. */
  doc?: string;
  auth: Auth;
  /** Path parameters that are not plain strings; the others are read as strings. */
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The largest body accepted; a bigger one is refused with 413 BODY_TOO_LARGE before it is read. */
  maxBody?: number;
  responses: Partial<Record<number, Reply>>;
  errors: Errors;
  /** A WebSocket upgrade, served beside Hono (upgrades.ts): documented here, not mounted. */
  upgrade?: true;
};

export type Contract = Record<`${Method} /${string}`, RouteDef>;

/** Keeps a contract's literal keys and schemas in its type (the handlers and the site's client are typed by them). */
export const contract = <const C extends Contract>(c: C): C => c;

/** Error sets, joined status by status. */
export function errors(...sets: Errors[]): Errors {
  const out: Record<number, ErrorCode[]> = {};
  for (const s of sets) for (const [status, codes] of Object.entries(s)) out[Number(status)] = [...new Set([...(out[Number(status)] ?? []), ...(codes ?? [])])];
  return out;
}

/** The API's one error body (errors.ts errorBody). */
export const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string(), requestId: z.string() }) });

export const splitKey = (key: string) => {
  const i = key.indexOf(' ');
  return { method: key.slice(0, i) as Method, path: key.slice(i + 1) };
};

/** The names of a path's parameters: '/api/sessions/:id/nodes/:node' → 'id' | 'node'. */
export type ParamNames<P extends string> = P extends `${string}:${infer N}/${infer Rest}`
  ? N | ParamNames<`/${Rest}`>
  : P extends `${string}:${infer N}`
    ? N
    : never;
export type PathOf<K> = K extends `${Method} ${infer P}` ? P : never;

type Out<S> = S extends z.ZodType ? z.output<S> : never;
type In<S> = S extends z.ZodType ? z.input<S> : never;
export type ParamsOf<K, R> = R extends { params: z.ZodObject }
  ? Omit<Record<ParamNames<PathOf<K>>, string>, keyof Out<R['params']>> & Out<R['params']>
  : Record<ParamNames<PathOf<K>>, string>;
type Responses<R> = R extends { responses: infer Rs } ? Rs : never;
/** The success statuses of a route whose body is JSON. */
export type JsonStatus<R> = { [S in keyof Responses<R>]: Responses<R>[S] extends z.ZodType ? S : never }[keyof Responses<R>] & ContentfulStatusCode;

/** What a handler gets beside the context: the route's inputs, checked against its schemas when it asks for them. */
export type Io<K, R> = {
  params: () => ParamsOf<K, R>;
  query: () => R extends { query: z.ZodObject } ? Out<R['query']> : never;
  body: () => Promise<R extends { body: z.ZodType } ? Out<R['body']> : never>;
  /** A JSON answer, typed by the route's schema for that status. */
  json: <S extends JsonStatus<R>>(status: S, data: In<Responses<R>[S]>) => Response;
};

/**
 * Mounts one route of a contract on Hono: its body limit first (when it has one), then the handler. Inputs are
 * parsed only when the handler asks (io.body(), io.query(), io.params()), so each route keeps its own order of
 * checks (a rate limit before the body, a path check before a download); every failure is a 400 VALIDATION_FAILED
 * naming the field.
 */
export function mountContract<C extends Contract, E extends HonoEnv>(app: Hono<E>, routes: C, limitBody: (maxSize: number) => MiddlewareHandler<E>) {
  /** maxBody: a limit known only at run time (the editor's, from BERTH_FILE_MAX), in place of the contract's. */
  return function on<K extends keyof C & string>(key: K, handler: (c: Context<E>, io: Io<K, C[K]>) => Response | Promise<Response>, maxBody?: number) {
    const r = routes[key] as RouteDef;
    maxBody ??= r.maxBody;
    if (r.upgrade) throw new Error(`${key} is a WebSocket upgrade: it is served by upgrades.ts, not Hono`);
    const { method, path } = splitKey(key);
    const io = (c: Context<E>) =>
      ({
        params: () => (r.params ? parseParams(c, r.params.loose()) : c.req.param()),
        query: () => parseQuery(c, r.query ?? z.object({})),
        body: () => parseJson(c, r.body ?? z.strictObject({})),
        json: (status: ContentfulStatusCode, data: unknown) => c.json(data, status),
      }) as unknown as Io<K, C[K]>;
    const run: MiddlewareHandler<E> = async (c) => handler(c, io(c));
    Object.defineProperty(run, 'name', { value: key });
    if (maxBody !== undefined) app.on(method, path, limitBody(maxBody), run);
    else app.on(method, path, run);
  };
}

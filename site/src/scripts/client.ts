// Berth's API, typed from the server's contract (sandbox-server/api.ts, sandbox-server/workshops/api.ts). The
// imports are type-only: no server code and no zod reach the page. A route is named by its contract key,
// 'METHOD /path/:param', which is also all the client needs at run time (the method, and the path to fill in).
import type { z } from 'zod';
import type { sessionRoutes } from '../../../sandbox-server/api.ts';
import type { ParamNames, PathOf } from '../../../sandbox-server/contract.ts';
import type { workshopRoutes } from '../../../sandbox-server/workshops/api.ts';
import { api } from './api.ts';

type Routes = typeof sessionRoutes & typeof workshopRoutes;
export type RouteKey = keyof Routes & string;
type Responses<K extends RouteKey> = Routes[K]['responses'];

/** What a route answers on success: the JSON of its success schema (nothing for a 204). */
export type Reply<K extends RouteKey> = {
  [S in keyof Responses<K>]: Responses<K>[S] extends z.ZodType ? z.output<Responses<K>[S]> : Responses<K>[S] extends null ? undefined : never;
}[keyof Responses<K>];
/** The body a route takes, as the page writes it (defaults may be left out). */
export type Body<K extends RouteKey> = Routes[K] extends { body: z.ZodType } ? z.input<Routes[K]['body']> : undefined;
export type Query<K extends RouteKey> = Routes[K] extends { query: z.ZodObject } ? { [q in keyof z.input<Routes[K]['query']>]?: string | number } : undefined;

type Params<K extends RouteKey> = [ParamNames<PathOf<K>>] extends [never] ? { params?: undefined } : { params: Record<ParamNames<PathOf<K>>, string | number> };
/** Where a route is: its path parameters and query. */
export type Where<K extends RouteKey> = Params<K> & { query?: Query<K> };
export type CallOptions<K extends RouteKey> = Where<K> & { body?: Body<K>; token?: string | null; signal?: AbortSignal };

/** The path of a route with its parameters and query filled in, e.g. for fetch() of a stream or a WebSocket. */
export function routePath<K extends RouteKey>(key: K, where: Where<K>): string {
  const o = where as { params?: Record<string, string | number>; query?: Record<string, string | number | undefined> };
  const path = key.slice(key.indexOf(' ') + 1).replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(String(o.params?.[name])));
  const q = Object.entries(o.query ?? {}).filter((e): e is [string, string | number] => e[1] !== undefined);
  return q.length ? `${path}?${new URLSearchParams(q.map(([k, v]) => [k, String(v)]))}` : path;
}

/** Calls a route; a failure is an ApiFailure (api.ts) with the server's code and message. */
export function call<K extends RouteKey>(key: K, o: CallOptions<K>): Promise<Reply<K>> {
  const method = key.slice(0, key.indexOf(' '));
  return api<Reply<K>>(method, routePath(key, o), {
    token: o.token ?? undefined,
    json: o.body,
    signal: o.signal,
  });
}

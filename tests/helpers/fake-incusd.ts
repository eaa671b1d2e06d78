// A stand-in incusd on a unix socket for the member agent's heartbeat: `GET /1.0` and one cluster member's
// `GET`/`PUT /1.0/cluster/members/<name>`, answered as Incus 6.0 does (cmd/incusd/api_cluster.go): the GET
// carries an ETag over the member's writable part, a PUT with a stale If-Match gets 412, a PUT replaces the
// whole config and takes description, roles, failure domain and groups from the body (no group: 400).
// `interfere` lets a test play another writer between the agent's GET and its PUT.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type MemberPut = { config: Record<string, string>; description: string; roles: string[]; failure_domain: string; groups: string[] };
export type Seen = { method: string; path: string; ifMatch?: string; body?: unknown };

const etagOf = (m: MemberPut) => createHash('sha256').update(JSON.stringify(m)).digest('hex');

export class FakeIncusd {
  server: Server;
  seen: Seen[] = [];
  member: MemberPut;
  name: string;
  clustered: boolean;
  /** Called once, after the next member GET is answered: another writer changing the member meanwhile. */
  interfere: ((m: MemberPut) => void) | null = null;

  constructor({ name = 'm2', clustered = true, member }: { name?: string; clustered?: boolean; member?: Partial<MemberPut> } = {}) {
    this.name = name;
    this.clustered = clustered;
    this.member = {
      config: { 'scheduler.instance': 'all', 'user.other': 'keep me' },
      description: 'second machine',
      roles: ['database'],
      failure_domain: 'rack-2',
      groups: ['default'],
      ...member,
    };
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  listen(socket: string) {
    return new Promise<void>((r) => this.server.listen(socket, r));
  }

  close() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }

  /** The value of one config key as now stored, or undefined. */
  key(k: string): string | undefined {
    return this.member.config[k];
  }

  private send(res: ServerResponse, status: number, metadata: unknown, headers: Record<string, string> = {}) {
    const body =
      status < 400
        ? { type: 'sync', status: 'Success', status_code: 200, operation: '', error_code: 0, error: '', metadata }
        : { type: 'error', status: '', status_code: 0, operation: '', error_code: status, error: String(metadata), metadata: null };
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '';
    const seen: Seen = { method: req.method ?? '', path, ...(req.headers['if-match'] ? { ifMatch: String(req.headers['if-match']) } : {}) };
    if (text) seen.body = JSON.parse(text);
    this.seen.push(seen);
    if (req.method === 'GET' && path === '/1.0')
      return this.send(res, 200, { api_version: '1.0', environment: { server_name: this.clustered ? this.name : 'none', server_clustered: this.clustered } });
    if (path !== `/1.0/cluster/members/${this.name}` || !this.clustered) return this.send(res, 404, 'not found');
    if (req.method === 'GET') {
      this.send(res, 200, { server_name: this.name, status: 'Online', ...this.member }, { etag: `"${etagOf(this.member)}"` });
      const i = this.interfere;
      this.interfere = null;
      i?.(this.member);
      return;
    }
    if (req.method === 'PUT') {
      const match = seen.ifMatch?.replace(/^"|"$/g, '');
      if (match && match !== etagOf(this.member)) return this.send(res, 412, `ETag doesn't match: ${etagOf(this.member)} vs ${match}`);
      const b = seen.body as MemberPut;
      if (!b.groups?.length) return this.send(res, 400, 'Cluster members need to belong to at least one group');
      if (this.member.roles.includes('database') && !b.roles?.includes('database'))
        return this.send(res, 400, 'The "database" role cannot be dropped at this time');
      this.member = {
        config: b.config ?? {},
        description: b.description ?? '',
        roles: b.roles ?? [],
        failure_domain: b.failure_domain ?? '',
        groups: b.groups,
      };
      return this.send(res, 200, {});
    }
    return this.send(res, 405, 'method not allowed');
  }
}

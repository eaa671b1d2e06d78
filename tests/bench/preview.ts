// 7. Preview: a page GET through Berth's preview proxy on Incus, the node's port reached directly (its bridge is
// routed here) and relayed (BERTH_INCUS_PREVIEW_RELAY=always: socat in the node over an Incus exec, the path a
// node on another cluster member takes). Two servers, one per path, each with one session running nginx; the
// GETs take turns in rounds so that load on the shared machine falls on both alike. Berth keeps a connection to
// the app between requests (preview/proxy.ts), so back-to-back GETs reuse it: *kept* figures; *new* GETs come
// after the kept connection has expired (the agent's 5 s), so each makes a connection (for the relay: an exec).
// Diagnostics from this process, without Berth's server: the relay's connection alone (exec started, socat
// connected, closed), and GETs in turn on one relayed connection.
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { relayPort } from '../../sandbox-server/engine/incus/relay.ts';
import { instanceName } from '../../sandbox-server/engine/incus/spec.ts';
import { exec, type Created } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { type Bench, type Ctx, benchServer, closeServer, create } from './lib/context.ts';
import { ms, ratio } from './lib/report.ts';
import { summarize } from './lib/stats.ts';

const ROUNDS = 5;
/** Longer than the preview agent's idle timeout (5 s): a GET after it needs a new connection. */
const EXPIRED_MS = 5_500;

/** One GET of nginx's page through the preview, a fresh connection to Berth each time; its time in ms. */
function timedGet(b: Bench, c: Created): Promise<number> {
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const req = request(
      { host: '127.0.0.1', port: b.s.port, path: `/p/${c.id}/node1/8080/`, agent: false, headers: { authorization: `Bearer ${c.token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d;
        });
        res.on('end', () =>
          res.statusCode === 200 && body.includes('Welcome to nginx') ? ok(performance.now() - t0) : fail(new Error(`preview answered ${res.statusCode}`)),
        );
      },
    );
    req.on('error', fail);
    req.end();
  });
}

/** Sequential keep-alive GETs on one connection (nginx answers with a Content-Length); each one's time in ms. */
async function keptAlive(conn: Duplex, count: number): Promise<number[]> {
  const times: number[] = [];
  let buf = Buffer.alloc(0);
  let waiting: (() => void) | null = null;
  conn.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiting?.();
  });
  const complete = () => {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? NaN);
    if (!Number.isFinite(length)) throw new Error('nginx answered without a Content-Length');
    if (buf.length < end + 4 + length) return false;
    buf = buf.subarray(end + 4 + length);
    return true;
  };
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    conn.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
    while (!complete()) await new Promise<void>((r) => (waiting = r));
    times.push(performance.now() - t0);
  }
  return times;
}

async function nginx(b: Bench): Promise<Created> {
  const c = await create(b);
  const r = await exec(b.s, c, 'docker run -d --name web -p 8080:80 nginx', { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`docker run nginx: ${r.stderr}`);
  await eventually(() => timedGet(b, c), { what: "nginx's page through the preview", timeoutMs: 60_000 });
  return c;
}

export async function preview(ctx: Ctx) {
  if (ctx.provider.name !== 'incus') {
    ctx.notes.push("preview: skipped; the relay is the Incus provider's (run with --provider incus)");
    return;
  }
  const n = ctx.flags.previews;
  const direct = await benchServer(ctx, { BERTH_POOL_SIZE: '0', BERTH_INCUS_PREVIEW_RELAY: 'auto' });
  let relayed: Bench | undefined;
  try {
    relayed = await benchServer(ctx, { BERTH_POOL_SIZE: '0', BERTH_INCUS_PREVIEW_RELAY: 'always' });
    const [cd, cr] = [await nginx(direct), await nginx(relayed)];
    const samples = {
      direct: [] as number[],
      relayed: [] as number[],
      directNew: [] as number[],
      relayedNew: [] as number[],
      connect: [] as number[],
      reused: [] as number[],
    };
    for (let i = 0; i < 3; i++) {
      await timedGet(direct, cd);
      await timedGet(relayed, cr);
    }
    ctx.log(`preview: ${n} GETs each way in ${ROUNDS} rounds`);
    for (let round = 0; round < ROUNDS; round++) {
      const share = Math.ceil(n / ROUNDS);
      for (let i = 0; i < share; i++) samples.direct.push(await timedGet(direct, cd));
      for (let i = 0; i < share; i++) samples.relayed.push(await timedGet(relayed, cr));
    }
    const fresh = Math.max(3, Math.ceil(n / 20));
    ctx.log(`preview: ${fresh} GETs each way on a new connection (${EXPIRED_MS / 1000} s apart)`);
    for (let i = 0; i < fresh; i++) {
      await sleep(EXPIRED_MS);
      samples.directNew.push(await timedGet(direct, cd));
      samples.relayedNew.push(await timedGet(relayed, cr));
    }
    // Where the relay's time goes: making its connection (exec, sockets, socat's connect), nothing sent.
    const client = new IncusClient({ socketPath: process.env.INCUS_SOCKET ?? '/var/lib/incus/unix.socket' });
    const ip = (await exec(relayed.s, cr, '. /etc/berth/node.env; echo "${BERTH_ADDR%/*}"')).stdout.trim();
    for (let i = 0; i < Math.max(5, Math.ceil(n / 4)); i++) {
      const t0 = performance.now();
      const conn = await relayPort(client, instanceName(cr.id, 'node1'), ip, 8080);
      samples.connect.push(performance.now() - t0);
      conn.destroy();
    }
    // What reusing a relayed connection (keep-alive) would cost per request: GETs in turn on one relay.
    const kept = await relayPort(client, instanceName(cr.id, 'node1'), ip, 8080);
    try {
      samples.reused = await keptAlive(kept, Math.max(5, Math.ceil(n / 4)));
    } finally {
      kept.destroy();
    }
    const d = summarize(samples.direct);
    const r = summarize(samples.relayed);
    const k = summarize(samples.connect);
    const u = summarize(samples.reused);
    const dn = summarize(samples.directNew);
    const rn = summarize(samples.relayedNew);
    ctx.data.preview = { direct: d, relayed: r, directNew: dn, relayedNew: rn, relayConnect: k, relayReused: u };
    const baselineIs = 'the same GET with the port reached directly (bridge routed here)';
    for (const p of ['p50', 'p95'] as const) {
      ctx.rows.push({
        section: 'preview',
        what: `GET nginx page through the relay (Incus exec + socat), connection kept from the last GET, ${p}, n=${r.n}`,
        berth: ms(r[p]),
        baseline: ms(d[p]),
        baselineIs,
        ratio: ratio(r[p], d[p]),
      });
    }
    ctx.rows.push({
      section: 'preview',
      what: `GET nginx page through the relay on a new connection (one exec), p50, n=${rn.n}`,
      berth: ms(rn.p50),
      baseline: ms(dn.p50),
      baselineIs: 'the same GET, direct, on a new connection',
      ratio: ratio(rn.p50, dn.p50),
    });
    ctx.rows.push({
      section: 'preview',
      what: `relay connection alone (exec started, socat connected), p50, n=${k.n} (diagnostic)`,
      berth: ms(k.p50),
      baseline: ms(d.p50),
      baselineIs,
      ratio: ratio(k.p50, d.p50),
    });
    ctx.rows.push({
      section: 'preview',
      what: `GET on one kept-alive relay connection, from this process (no Berth server), p50, n=${u.n} (diagnostic)`,
      berth: ms(u.p50),
      baseline: ms(d.p50),
      baselineIs,
      ratio: ratio(u.p50, d.p50),
    });
  } finally {
    await closeServer(direct, ctx);
    if (relayed) await closeServer(relayed, ctx);
  }
}

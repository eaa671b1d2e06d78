// The learner's pushed updates and downloads against the real engine: the session's event stream
// reports a port published inside the node from the learner engine's own events (no poll), the
// archive route streams a tar of a workspace folder, and quiz answers are judged by the server.
import test from 'ava';
import { createSession, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

let s: TestServer;
test.before(async () => {
  s = await startServer();
});
test.after.always(async () => {
  await s?.stop();
});

/** Reads server-sent events from a fetch body: `until(want, ms)` resolves true once `want` holds, false on time out. */
function events(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let next: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  return async function until(want: (event: string, data: unknown) => boolean, ms: number) {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: ?(.*)$/m.exec(block)?.[1];
        if (data && want(event, JSON.parse(data))) return true;
      }
      // A read that outlives one wait is kept for the next, so no bytes are lost between waits.
      next ??= reader.read();
      const r = await Promise.race([next, new Promise<null>((ok) => setTimeout(() => ok(null), Math.max(0, deadline - Date.now())))]);
      if (r === null) return false;
      next = undefined;
      if (r.done) return false;
      buf += decoder.decode(r.value, { stream: true });
    }
  };
}

test.serial("a port published in the node is pushed on the session stream from the engine's events", async (t) => {
  const c = await createSession(s);
  const ctl = new AbortController();
  try {
    const res = await fetch(`${s.url}/api/sessions/${c.id}/events`, { headers: { authorization: `Bearer ${c.token}` }, signal: ctl.signal });
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const until = events(res.body!);
    let mode = '';
    t.true(
      await until((e, d) => {
        if (e === 'hello') mode = (d as { ports: string }).ports;
        return e === 'ports';
      }, 20_000),
      'a first ports list',
    );
    t.is(mode, 'push', 'the local provider follows the node engine');
    const r = await exec(s, c, 'docker run -d --name feedweb -p 8085:80 nginx >/dev/null', { timeoutMs: 120_000 });
    t.is(r.exitCode, 0, r.stderr);
    const t0 = performance.now();
    t.true(await until((e, d) => e === 'ports' && (d as { ports: { port: number }[] }).ports.some((p) => p.port === 8085), 20_000), 'port 8085 pushed');
    const ms = Math.round(performance.now() - t0);
    t.log(`docker run returned → port pushed: ${ms} ms`);
    console.log(`FIGURE runReturnedToPortPushedMs=${ms}`);
    // Removing the container is pushed too: the port goes.
    await exec(s, c, 'docker rm -f feedweb >/dev/null');
    t.true(await until((e, d) => e === 'ports' && !(d as { ports: { port: number }[] }).ports.some((p) => p.port === 8085), 20_000), 'port 8085 gone');
    // Without the token there is no stream.
    t.is((await fetch(`${s.url}/api/sessions/${c.id}/events`)).status, 401);
    // The watcher's `docker events` ends with the stream (it would otherwise linger in the node).
    ctl.abort();
    let left = '';
    await eventually(
      async () => {
        left = (await exec(s, c, "pgrep -fc '^berth-events-' || true")).stdout.trim();
        return left === '0' ? left : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 500, what: () => `no docker events left running in the node (${left} left)` },
    );
  } finally {
    ctl.abort();
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

test.serial('the workspace, or one folder of it, downloads as a tar', async (t) => {
  await withSession(s, {}, async (c) => {
    t.is((await exec(s, c, 'mkdir -p proj/sub && printf "hello\\n" > proj/sub/a.txt && mkdir -p .cache && echo x > .cache/big')).exitCode, 0);
    let r = await s.api(`/api/sessions/${c.id}/archive?path=proj`, { token: c.token });
    t.is(r.status, 200);
    t.is(r.headers.get('content-type'), 'application/x-tar');
    t.regex(r.headers.get('content-disposition') ?? '', /filename="proj\.tar"/);
    const tar = Buffer.from(await r.arrayBuffer());
    t.true(tar.includes(Buffer.from('proj/sub/a.txt')) && tar.includes(Buffer.from('hello\n')));
    t.is(tar.length % 512, 0, 'a whole tar');
    r = await s.api(`/api/sessions/${c.id}/archive`, { token: c.token });
    const all = Buffer.from(await r.arrayBuffer());
    t.regex(r.headers.get('content-disposition') ?? '', /filename="workspace\.tar"/);
    t.true(all.includes(Buffer.from('./proj/sub/a.txt')));
    t.false(all.includes(Buffer.from('./.cache/big')), 'caches are left out');
    // Outside the workspace, missing folders, no token: JSON errors, no archive.
    r = await s.api(`/api/sessions/${c.id}/archive?path=/etc`, { token: c.token });
    t.is(r.status, 400);
    t.is(((await r.json()) as { error: { code: string } }).error.code, 'PATH_OUTSIDE_WORKSPACE');
    r = await s.api(`/api/sessions/${c.id}/archive?path=nope`, { token: c.token });
    t.is(r.status, 404);
    t.is((await s.api(`/api/sessions/${c.id}/archive`)).status, 401);
  });
});

test.serial('quiz answers are judged by the server, with explanations only for the chosen options', async (t) => {
  const ask = async (answer: number[]) => {
    const r = await s.api('/api/lessons/01-why-containers/quizzes/q-vm-cost/answer', { method: 'POST', json: { answer } });
    return {
      status: r.status,
      body: (await r.json()) as {
        correct: boolean;
        chosenRight: number;
        chosenWrong: number;
        rightCount: number;
        explanations: { option: number; correct: boolean; html: string }[];
      },
    };
  };
  let a = await ask([0]);
  t.is(a.status, 200);
  t.false(a.body.correct);
  t.deepEqual([a.body.rightCount, a.body.chosenRight, a.body.chosenWrong], [2, 1, 0]);
  t.deepEqual(
    a.body.explanations.map((e) => [e.option, e.correct]),
    [[0, true]],
  );
  t.regex(a.body.explanations[0].html, /guest OS/);
  a = await ask([1, 0]);
  t.true(a.body.correct);
  a = await ask([0, 2]);
  t.false(a.body.correct);
  t.is(a.body.chosenWrong, 1);
  t.is((await ask([7])).status, 400);
  t.is((await s.api('/api/lessons/01-why-containers/quizzes/nope/answer', { method: 'POST', json: { answer: [0] } })).status, 404);
});

// The sandbox server against the real engine: lifecycle, isolation between sandboxes, bad input.
import test from 'ava';
import { createSession, exec, startServer, type TestServer, withSession } from '../helpers/server.ts';

let s: TestServer;
test.before(async () => {
  s = await startServer({ BERTH_MAX_SANDBOXES: '3' });
});
test.after.always(async () => {
  await s?.stop();
});

test.serial('create → docker run hello-world → delete', async (t) => {
  const c = await createSession(s);
  t.regex(c.id, /^[a-z0-9]+$/);
  t.true(c.token.length >= 40, 'token carries at least 128 bits');
  t.deepEqual(c.nodes, [{ name: 'node1' }]);
  try {
    const r = await exec(s, c, 'docker run --rm hello-world', { timeoutMs: 60_000 });
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /Hello from/);
    const who = await exec(s, c, 'id -un; id -u; echo $HOME');
    const [name, uid, home] = who.stdout.trim().split('\n');
    t.deepEqual([name, home], ['learner', '/home/learner'], 'commands run as the learner');
    if (process.env.BERTH_PROVIDER === 'incus') {
      // An Incus node is a user namespace of its own: the learner's uid maps into the node's isolated range
      // of host ids (1,000,000 and up), never onto a host id that means anything outside it.
      const map = (await exec(s, c, 'cat /proc/self/uid_map')).stdout.trim().split('\n')[0].trim().split(/\s+/).map(Number);
      t.deepEqual([map[0], map[2]], [0, 65_536], 'one 65536-id range per node');
      t.true(map[1] >= 1_000_000, `never root: the node's ids start at host uid ${map[1]}`);
      t.is(Number(uid), 1000);
    } else t.true(Number(uid) >= 40_000 && Number(uid) < 65_536, `never root: the learner is its node's own host uid (${uid})`);
  } finally {
    t.is((await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token })).status, 204);
  }
  const gone = await s.api(`/api/sessions/${c.id}`, { token: c.token });
  t.is(gone.status, 404);
  t.is(((await gone.json()) as { error: { code: string } }).error.code, 'SESSION_NOT_FOUND');
});

test.serial("two sandboxes cannot see each other's containers, images or networks", async (t) => {
  const a = await createSession(s);
  const b = await createSession(s);
  try {
    const setup = await exec(
      s,
      a,
      [
        'docker network create only-in-a >/dev/null',
        'docker volume create only-in-a-vol >/dev/null',
        'printf "FROM scratch\\nLABEL x=1\\n" | docker build -q -t only-in-a:1 - >/dev/null',
        'docker create --name only-in-a only-in-a:1 true >/dev/null',
      ].join(' && '),
    );
    t.is(setup.exitCode, 0, setup.stderr);
    const seen = await exec(
      s,
      b,
      'docker ps -a --format "{{.Names}}"; docker images --format "{{.Repository}}"; docker network ls --format "{{.Name}}"; docker volume ls -q',
    );
    t.is(seen.exitCode, 0, seen.stderr);
    t.false(seen.stdout.includes('only-in-a'), seen.stdout);
    const inA = await exec(s, a, 'docker ps -a --format "{{.Names}}"');
    t.true(inA.stdout.includes('only-in-a'));
    // The engines are different processes with different ids, not two views of one engine.
    const idA = (await exec(s, a, 'docker info -f "{{.ID}}"')).stdout;
    const idB = (await exec(s, b, 'docker info -f "{{.ID}}"')).stdout;
    t.not(idA, idB);
  } finally {
    await s.api(`/api/sessions/${a.id}`, { method: 'DELETE', token: a.token });
    await s.api(`/api/sessions/${b.id}`, { method: 'DELETE', token: b.token });
  }
});

test.serial('bad input gets a clear JSON error and changes nothing', async (t) => {
  const c = await createSession(s);
  const code = async (r: Response) => ((await r.json()) as { error: { code: string; message: string; requestId: string } }).error;
  try {
    let r = await s.api('/api/sessions/doesnotexist', { token: c.token });
    t.is(r.status, 404);
    t.is((await code(r)).code, 'SESSION_NOT_FOUND');
    // A wrong token and an unknown session answer alike: no oracle for which sessions exist.
    r = await s.api(`/api/sessions/${c.id}`, { token: 'x'.repeat(43) });
    t.is(r.status, 404);
    t.is((await code(r)).code, 'SESSION_NOT_FOUND');
    r = await s.api(`/api/sessions/${c.id}`);
    t.is(r.status, 401);
    r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, body: '{"cmd": ', headers: { 'content-type': 'application/json' } });
    t.is(r.status, 400);
    t.is((await code(r)).code, 'VALIDATION_FAILED');
    r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd: 'x'.repeat(200_000) } });
    t.is(r.status, 413);
    t.is((await code(r)).code, 'BODY_TOO_LARGE');
    r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd: 'true', node: 'node7' } });
    t.is(r.status, 404);
    t.is((await code(r)).code, 'NODE_NOT_FOUND');
    r = await s.api(`/api/sessions/${c.id}/exec`, { method: 'POST', token: c.token, json: { cmd: 'sleep 30', timeoutMs: 1000 } });
    t.is(r.status, 408);
    t.is((await code(r)).code, 'EXEC_TIMEOUT');
    r = await s.api('/api/sessions', { method: 'POST', json: { nodes: 0 } });
    t.is(r.status, 400);
    const e = await code(r);
    t.truthy(e.message);
    t.truthy(e.requestId);
    r = await s.api('/api/sessions', { method: 'POST', json: { lesson: 'no-such-lesson' } });
    t.is(r.status, 404);
    t.is((await code(r)).code, 'LESSON_NOT_FOUND');
    // The session is untouched by all of the above.
    t.is((await exec(s, c, 'echo still-here')).stdout, 'still-here\n');
    // Capacity: the cap is 3 sandboxes; two more fit, the fourth is refused.
    const more = [await createSession(s), await createSession(s)];
    r = await s.api('/api/sessions', { method: 'POST', json: {} });
    t.is(r.status, 503);
    t.is((await code(r)).code, 'OUT_OF_CAPACITY');
    for (const m of more) await s.api(`/api/sessions/${m.id}`, { method: 'DELETE', token: m.token });
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});

test.serial('exec output is bounded and the OpenAPI contract is served', async (t) => {
  await withSession(s, {}, async (c) => {
    const r = await exec(s, c, 'head -c 3000000 /dev/zero | tr "\\0" a');
    t.is(r.stdout.length, 1024 * 1024);
    const api = (await (await s.api('/api/openapi.json')).json()) as { paths: Record<string, unknown> };
    for (const p of ['/api/sessions', '/api/sessions/{id}', '/api/sessions/{id}/exec', '/api/sessions/{id}/terminal', '/api/sessions/{id}/extend'])
      t.truthy(api.paths[p], p);
    const metrics = await (await s.api('/metrics')).text();
    t.regex(metrics, /berth_sandbox_creation_seconds_bucket/);
    t.regex(metrics, /berth_sandboxes\{state="session"\} 1/);
  });
});

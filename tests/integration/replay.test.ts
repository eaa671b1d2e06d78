// Skip to a step and Show me through the real server and engine: a fresh sandbox is brought to the start of
// a step by replaying the earlier steps, the step's own check then passes after its commands, and the
// route's errors are JSON with codes.
import test from 'ava';
import { join } from 'node:path';
import { type Created, createWorkshop, exec, firstAdminToken, startServer, type TestServer, withSession } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

const lessonsDir = join(import.meta.dirname, '..', '..', 'lessons');
let s: TestServer;
test.before(async () => {
  s = await startServer({ BERTH_LESSONS_DIR: lessonsDir });
});
test.after.always(async () => {
  await s?.stop();
});

type View = { state: string; step: string; steps: { id: string; state: string; ms?: number }[]; failedAt?: string; problem?: string; ms?: number };

/** The replay's view once it stopped running: a learner's own (their session) or one an instructor started (a path). */
function waitReplay(c: Created | { path: string; token: string }, timeoutMs = 240_000): Promise<View> {
  const path = 'path' in c ? c.path : `/api/sessions/${c.id}/replay`;
  let v: View | undefined;
  return eventually(
    async () => {
      v = (await (await s.api(path, { token: c.token })).json()) as View;
      return v.state === 'running' ? undefined : v;
    },
    { timeoutMs, intervalMs: 500, what: () => `the replay to end (last: ${JSON.stringify(v)})` },
  );
}

const check = async (c: Created, lesson: string, id: string) =>
  ((await (await s.api(`/api/sessions/${c.id}/checks/${id}`, { method: 'POST', token: c.token, json: { lesson } })).json()) as { passed: boolean }).passed;

test.serial('skipping to a step replays the earlier ones; doing the step then passes its check', async (t) => {
  await withSession(s, { lesson: '01-why-containers' }, async (c) => {
    t.is((await s.api(`/api/sessions/${c.id}/replay`, { token: c.token })).status, 404);
    const r = await s.api(`/api/sessions/${c.id}/replay`, { method: 'POST', token: c.token, json: { lesson: '01-why-containers', step: 'sizes' } });
    t.is(r.status, 202);
    const started = (await r.json()) as View;
    t.deepEqual(
      started.steps.map((x) => x.id),
      ['first-container', 'process'],
    );
    // One replay at a time.
    const again = await s.api(`/api/sessions/${c.id}/replay`, { method: 'POST', token: c.token, json: { lesson: '01-why-containers', step: 'sizes' } });
    if (again.status === 409) t.is(((await again.json()) as { error: { code: string } }).error.code, 'REPLAY_RUNNING');
    const v = await waitReplay(c);
    t.is(v.state, 'done', JSON.stringify(v));
    t.deepEqual(
      v.steps.map((x) => x.state),
      ['done', 'done'],
    );
    t.log(`replayed 2 steps of 01 in ${v.ms} ms`);
    // The earlier steps' state is there; the skipped-to step's own check fails until it is done.
    t.true(await check(c, '01-why-containers', 'first-ran'));
    t.true(await check(c, '01-why-containers', 'sleeper-running'));
    t.false(await check(c, '01-why-containers', 'debian-pulled'));
    // Show me: the step's commands, typed here through exec as the page would type them.
    const ref = (await (await s.api(`/api/sessions/${c.id}/lessons/01-why-containers/steps/sizes/reference`, { token: c.token })).json()) as {
      commands: { node: string; text: string; interactive: boolean }[];
    };
    t.deepEqual(ref.commands, [{ node: 'node1', text: 'docker pull debian\ndocker images', interactive: false }]);
    for (const cmd of ref.commands) t.is((await exec(s, c, cmd.text, { node: cmd.node, timeoutMs: 120_000 })).exitCode, 0);
    t.true(await check(c, '01-why-containers', 'debian-pulled'));
    // An exercise's reference is its solution.
    const ex = (await (await s.api(`/api/sessions/${c.id}/lessons/01-why-containers/steps/keep-one-running/reference`, { token: c.token })).json()) as {
      commands: { text: string }[];
    };
    t.regex(ex.commands[0].text, /docker run -d --name timer/);
  });
});

test.serial('a replay that fails says which step and why', async (t) => {
  await withSession(s, { lesson: '01-why-containers' }, async (c) => {
    // A container named "first" already exists, so replaying step 1 (docker run --name first) fails.
    t.is((await exec(s, c, 'docker create --name first busybox true')).exitCode, 0);
    t.is((await s.api(`/api/sessions/${c.id}/replay`, { method: 'POST', token: c.token, json: { lesson: '01-why-containers', step: 'process' } })).status, 202);
    const v = await waitReplay(c);
    t.is(v.state, 'failed');
    t.is(v.failedAt, 'first-container');
    t.regex(v.problem ?? '', /already in use/);
  });
});

test.serial('replay errors are JSON with codes, and the token is checked', async (t) => {
  await withSession(s, {}, async (c) => {
    const code = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;
    const post = (json: unknown, token = c.token) => s.api(`/api/sessions/${c.id}/replay`, { method: 'POST', token, json });
    let r = await post({ lesson: '01-why-containers', step: 'nope' });
    t.is(r.status, 404);
    t.is(await code(r), 'STEP_NOT_FOUND');
    r = await post({ lesson: '99-nothing', step: 'x' });
    t.is(r.status, 404);
    t.is(await code(r), 'LESSON_NOT_FOUND');
    r = await post({ lesson: '01-why-containers' });
    t.is(r.status, 400);
    t.is(await code(r), 'VALIDATION_FAILED');
    r = await post({ lesson: '13-engine-architecture', step: 'remote' });
    t.is(r.status, 409);
    t.is(await code(r), 'NODES_MISSING');
    // A wrong token answers as an unknown session does (no oracle for which sessions exist).
    r = await post({ lesson: '01-why-containers', step: 'process' }, 'x'.repeat(43));
    t.is(r.status, 404);
    t.is(await code(r), 'SESSION_NOT_FOUND');
    r = await s.api(`/api/sessions/${c.id}/lessons/01-why-containers/steps/nope/reference`, { token: c.token });
    t.is(r.status, 404);
    t.is(await code(r), 'STEP_NOT_FOUND');
  });
});

test.serial("an instructor skips a workshop learner's fresh sandbox to a step; learner tokens cannot", async (t) => {
  const admin = firstAdminToken(s);
  t.truthy(admin, 'the server wrote its first instructor token');
  const w = await createWorkshop(s, { title: 'Skip test', lessons: ['01-why-containers'], capacity: 1 });
  try {
    const joined = await s.api('/api/join', { method: 'POST', json: { code: w.code, name: 'Ada' } });
    t.is(joined.status, 201);
    const ada = (await joined.json()) as { learner: { id: string }; session: Created };
    const path = `/api/workshops/${w.id}/learners/${ada.learner.id}/replay`;
    t.is((await s.api(path, { method: 'POST', token: ada.session.token, json: { lesson: '01-why-containers', step: 'process' } })).status, 401);
    // Something of Ada's own is there before; the fresh rebuild removes it.
    t.is((await exec(s, ada.session, 'docker create --name leftover busybox true')).exitCode, 0);
    const r = await s.api(path, { method: 'POST', token: admin, json: { lesson: '01-why-containers', step: 'process' } });
    t.is(r.status, 202, await r.clone().text());
    const v = await waitReplay({ path, token: admin });
    t.is(v.state, 'done', JSON.stringify(v));
    t.true(await check(ada.session, '01-why-containers', 'first-ran'), "Ada's sandbox is at the start of step 2");
    t.not((await exec(s, ada.session, 'docker inspect leftover')).exitCode, 0, 'the sandbox was rebuilt first');
  } finally {
    await s.api(`/api/workshops/${w.id}/end`, { method: 'POST', token: admin });
  }
});

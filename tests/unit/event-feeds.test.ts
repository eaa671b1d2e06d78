// The two server-sent-event feeds through app.request() (sandbox-server/event-queue.ts behind both): the
// instructor's workshop feed and a learner's session feed deliver in order what happens after they open, and a
// reader that goes away ends its stream. What the engine pushes (ports) is tested in integration/session-feed.
import test from 'ava';
import { ADMIN_TOKEN, buildApp } from '../helpers/app-harness.ts';
import { events } from '../helpers/event-stream.ts';

test("the workshop feed: a snapshot, then each broadcast in order; a reader's cancel ends it", async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const r = await h.request(`/api/workshops/${w.id}/events`, { token: ADMIN_TOKEN });
  t.is(r.status, 200);
  t.regex(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  const feed = events(r);
  t.is((await feed.next()).event, 'snapshot');
  for (const text of ['one', 'two', 'three'])
    t.is((await h.request(`/api/workshops/${w.id}/messages`, { method: 'POST', token: ADMIN_TOKEN, json: { text } })).status, 201);
  const got = [await feed.next(), await feed.next(), await feed.next()];
  t.deepEqual(
    got.map((e) => [e.event, (e.data as { text: string }).text]),
    [
      ['message', 'one'],
      ['message', 'two'],
      ['message', 'three'],
    ],
  );
  await feed.cancel();
  // The subscription went with the reader: a later broadcast reaches no one and breaks nothing.
  t.is((await h.request(`/api/workshops/${w.id}/messages`, { method: 'POST', token: ADMIN_TOKEN, json: { text: 'four' } })).status, 201);
});

test("a workshop learner's session feed: hello and ports first, then the workshop's broadcasts", async (t) => {
  const h = buildApp();
  const w = await h.workshop();
  const joined = (await (await h.join(w.code, 'Ada')).json()) as { session: { id: string; token: string } };
  const r = await h.request(`/api/sessions/${joined.session.id}/events`, { token: joined.session.token });
  t.is(r.status, 200);
  const feed = events(r);
  const hello = await feed.next();
  t.is(hello.event, 'hello');
  t.deepEqual(hello.data, { ports: 'poll', nodes: ['node1'] });
  t.is((await feed.next()).event, 'ports');
  t.is((await h.request(`/api/workshops/${w.id}/messages`, { method: 'POST', token: ADMIN_TOKEN, json: { text: 'hi all' } })).status, 201);
  let e = await feed.next();
  while (e.event !== 'message') e = await feed.next();
  t.is((e.data as { text: string }).text, 'hi all');
  await feed.cancel();
});

// The replay module with a scripted exec: which commands skip-to-step types, in what order, and where it
// stops. Pure logic, so a recording fake stands in for the sandbox here (the real replays run in
// tests/lessons/verify.test.ts and tests/integration/replay.test.ts).
import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLesson, referenceFor, replay, replayPlan, type ReplayEvent } from '../../lessons/lib/index.ts';

const check = (id: string) => `\`\`\`check\nid: ${id}\ntitle: The ${id} exists\nscript: test-${id}\nfail: Make it.\n\`\`\`\n`;
const src = `---\ntitle: Replay me\nsummary: A lesson for the replay tests.\nduration: 5\nlevel: beginner\nnodes: 2\n---\n
## One {#one}\n\n\`\`\`run\nmake-a\n\`\`\`\n\n\`\`\`run node=node2\nmake-b\n\`\`\`\n\n${check('a')}
## Two {#two}\n\n\`\`\`run interactive\ndocker run -it x sh\n\`\`\`\n\n\`\`\`verify\nmake-c\n\`\`\`\n\n${check('c')}
## Exercise: Three {#three .exercise}\n\n${check('d')}
## Four {#four}\n\n\`\`\`run\nmake-e\n\`\`\`\n\n${check('e')}`;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-replay-'));
  mkdirSync(join(dir, '01-r', 'solutions'), { recursive: true });
  writeFileSync(join(dir, '01-r', 'solutions', 'three.sh'), 'make-d\n');
  const r = parseLesson('01-r', src);
  if (!r.lesson) throw new Error(JSON.stringify(r.errors));
  return { dir, lesson: r.lesson };
}

test('the plan for a step is every earlier step: run blocks on their nodes, verify in place of interactive ones, solutions for exercises', (t) => {
  const { dir, lesson } = setup();
  t.deepEqual(replayPlan(lesson, 'one', dir), []);
  const plan = replayPlan(lesson, 'four', dir);
  t.deepEqual(
    plan.map((s) => s.id),
    ['one', 'two', 'three'],
  );
  t.deepEqual(
    plan.map((s) => s.actions.map((a) => `${a.node}:${a.script.trim()}`)),
    [['node1:make-a', 'node2:make-b'], ['node1:make-c'], ['node1:make-d']],
  );
  t.throws(() => replayPlan(lesson, 'nope', dir), { instanceOf: RangeError });
});

test('show me types what a person would: interactive commands included, the solution for an exercise', (t) => {
  const { dir, lesson } = setup();
  t.deepEqual(referenceFor(lesson, lesson.steps[1], dir), [{ node: 'node1', text: 'docker run -it x sh', interactive: true }]);
  t.deepEqual(referenceFor(lesson, lesson.steps[2], dir), [{ node: 'node1', text: 'make-d', interactive: false }]);
});

test('a replay runs the plan in order, reports each step, and stops at the first failing command', async (t) => {
  const { dir, lesson } = setup();
  const ran: string[] = [];
  const events: ReplayEvent[] = [];
  const ok = await replay(
    replayPlan(lesson, 'four', dir),
    async (node, script) => {
      ran.push(`${node}:${script.trim()}`);
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    { onEvent: (e) => events.push(e) },
  );
  t.true(ok.ok);
  t.deepEqual(ran, ['node1:make-a', 'node2:make-b', 'node1:make-c', 'node1:make-d']);
  t.deepEqual(
    events.map((e) => `${e.type}:${e.step}`),
    ['step-start:one', 'step-done:one', 'step-start:two', 'step-done:two', 'step-start:three', 'step-done:three'],
  );

  const failed = await replay(replayPlan(lesson, 'four', dir), async (_node, script) => ({
    exitCode: script.includes('make-b') ? 3 : 0,
    stdout: '',
    stderr: 'no b here',
  }));
  t.false(failed.ok);
  t.is(failed.failedAt, 'one');
  t.regex(failed.problem!, /exited 3: no b here/);
});

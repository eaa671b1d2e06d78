// The verifier's logic with a scripted exec: pure logic, so a fake is the right tool here.
import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLesson, verifyLesson } from '../../lessons/lib/index.ts';

const src = `---\ntitle: Verify me\nsummary: A lesson for the verifier tests.\nduration: 5\nlevel: beginner\n---\n
## One {#one}\n\n\`\`\`run\nmake-thing\n\`\`\`\n\n\`\`\`check\nid: thing\ntitle: The thing exists\nscript: test-thing\nfail: Make it.\n\`\`\`\n
## Exercise: Two {#two .exercise}\n\n\`\`\`check\nid: other\ntitle: The other exists\nscript: test-other\nfail: Make it.\n\`\`\`\n`;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-verify-'));
  mkdirSync(join(dir, '01-v', 'solutions'), { recursive: true });
  writeFileSync(join(dir, '01-v', 'solutions', 'two.sh'), 'make-other\n');
  return { dir, lesson: parseLesson('01-v', src).lesson! };
}

/** A tiny world: scripts that make things, and checks that look for them. */
function world(opts: { thingAlreadyThere?: boolean; solutionBroken?: boolean } = {}) {
  const things = new Set(opts.thingAlreadyThere ? ['thing'] : []);
  const ran: string[] = [];
  const exec = async (_node: string, script: string) => {
    ran.push(script.trim());
    if (script.startsWith('make-')) {
      if (opts.solutionBroken && script.includes('other')) return { exitCode: 1, stdout: '', stderr: 'boom' };
      things.add(script.trim().slice(5));
      return { exitCode: 0, stdout: '', stderr: '' };
    }
    return { exitCode: things.has(script.trim().slice(5)) ? 0 : 1, stdout: '', stderr: '' };
  };
  return { exec, ran };
}

test('a good lesson verifies: each check fails before and passes after, the solution is used', async (t) => {
  const { dir, lesson } = setup();
  const w = world();
  const r = await verifyLesson(lesson, dir, w.exec, { settleTries: 1 });
  t.true(r.ok);
  t.deepEqual(r.steps.map((s) => s.checks.map((c) => [c.id, c.before, c.after])), [[['thing', 'fail', 'pass']], [['other', 'fail', 'pass']]]);
  t.deepEqual(w.ran, ['test-thing', 'make-thing', 'test-thing', 'test-other', 'make-other', 'test-other']);
});

test('a check that already passes before its step is a defect', async (t) => {
  const { dir, lesson } = setup();
  const r = await verifyLesson(lesson, dir, world({ thingAlreadyThere: true }).exec, { settleTries: 1 });
  t.false(r.ok);
  t.regex(r.steps[0].problem!, /thing: before pass/);
});

test('a failing reference solution is reported', async (t) => {
  const { dir, lesson } = setup();
  const r = await verifyLesson(lesson, dir, world({ solutionBroken: true }).exec, { settleTries: 1 });
  t.false(r.ok);
  t.regex(r.steps[1].problem!, /commands exited 1: boom/);
});

// The verifier's logic against a tiny world of files instead of an engine: pure logic, so a stand-in is
// the right tool here. Scripts really run in bash; `make-X` creates thing X, `test-X` tests for it,
// `drop-X` removes it and `fail-X` fails; the sandbox snapshot and restore copy the world's folder.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLesson, verifyLesson } from '../../lessons/lib/index.ts';
import { readOnlyCheck, RESTORE, SNAPSHOT } from '../../lessons/lib/sandbox-state.ts';

const [checkHead, checkTail] = readOnlyCheck('@@CHECK@@').split('@@CHECK@@');

const fm = `---\ntitle: Verify me\nsummary: A lesson for the verifier tests.\nduration: 5\nlevel: beginner\n---\n`;
const check = (id: string, script = `test-${id}`) => `\n\`\`\`check\nid: ${id}\ntitle: The ${id} exists\nscript: ${script}\nfail: Make it.\n\`\`\`\n`;
const src = fm + '\n## One {#one}\n\n```run\nmake-thing\n```\n' + check('thing') + '\n## Exercise: Two {#two .exercise}\n' + check('other');

function setup(source = src, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-verify-'));
  mkdirSync(join(dir, '01-v', 'solutions'), { recursive: true });
  mkdirSync(join(dir, '01-v', 'fakes'), { recursive: true });
  writeFileSync(join(dir, '01-v', 'solutions', 'two.sh'), 'make-other\n');
  for (const [p, text] of Object.entries(files)) writeFileSync(join(dir, '01-v', p), text);
  const { lesson, errors } = parseLesson('01-v', source);
  if (!lesson) throw new Error(errors.map((e) => e.message).join('; '));
  return { dir, lesson };
}

/** A world of files: each script runs in bash with the world's verbs; every script is logged. */
function world(opts: { thingAlreadyThere?: boolean; leaky?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'berth-world-'));
  const w = join(root, 'w');
  mkdirSync(w);
  if (opts.thingAlreadyThere) writeFileSync(join(w, 'thing'), '');
  const ran: string[] = [];
  const verbs = `command_not_found_handle() { case "$1" in make-*) touch "${w}/\${1#make-}";; test-*) test -e "${w}/\${1#test-}";; drop-*) rm -f "${w}/\${1#drop-}";; fail-*) return 1;; *) echo "$1: not found" >&2; return 127;; esac; }\n`;
  const exec = async (_node: string, sent: string) => {
    let script = sent;
    if (script === SNAPSHOT) {
      ran.push('snapshot');
      execFileSync('cp', ['-a', w, join(root, 'saved')]);
      return { exitCode: 0, stdout: '', stderr: '' };
    }
    if (script === RESTORE) {
      ran.push('restore');
      if (!opts.leaky) {
        execFileSync('rm', ['-rf', w]);
        execFileSync('cp', ['-a', join(root, 'saved'), w]);
      }
      const diff = spawnSync('diff', ['-r', join(root, 'saved'), w], { encoding: 'utf8' }).stdout;
      return { exitCode: 0, stdout: diff, stderr: '' };
    }
    if (script.startsWith(checkHead) && script.endsWith(checkTail)) {
      // A check between two reads of the world: the world's listing stands in for the engine's state.
      const inner = script.slice(checkHead.length, script.length - checkTail.length);
      ran.push(inner);
      const list = () => spawnSync('ls', ['-A', w], { encoding: 'utf8' }).stdout;
      const before = list();
      const r = spawnSync('bash', ['-c', verbs + inner], { encoding: 'utf8' });
      const after = list();
      return { exitCode: r.status ?? 1, stdout: before === after ? '' : `@@changed ${before.trim()} -> ${after.trim()}\n`, stderr: '' };
    }
    if (script.includes(RESTORE)) {
      // A fake's round: the world's own restore stands in for the engine's.
      ran.push(`round: ${/\( (\S+)/.exec(script)?.[1]}`);
      const saved = join(root, 'saved');
      script = script.replace(RESTORE, `${opts.leaky ? '' : `rm -rf ${w} && cp -a ${saved} ${w};`} diff -r ${saved} ${w}; true`);
    } else
      ran.push(
        script
          .split('\n')
          .filter((l) => l && !l.startsWith('__berth_rc'))
          .join('; '),
      );
    const r = spawnSync('bash', ['-c', verbs + script], { encoding: 'utf8' });
    return { exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  return { exec, ran };
}

test('a good lesson verifies: each check fails before and passes after, the solution is used', async (t) => {
  const { dir, lesson } = setup();
  const w = world();
  const r = await verifyLesson(lesson, dir, w.exec, { settleTries: 1 });
  t.true(r.ok, JSON.stringify(r.steps.map((s) => s.problem)));
  t.deepEqual(
    r.steps.map((s) => s.checks.map((c) => [c.id, c.before, c.after])),
    [[['thing', 'fail', 'pass']], [['other', 'fail', 'pass']]],
  );
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
  writeFileSync(join(dir, '01-v', 'solutions', 'two.sh'), 'fail-other\n');
  const r = await verifyLesson(lesson, dir, world().exec, { settleTries: 1 });
  t.false(r.ok);
  t.regex(r.steps[1].problem!, /commands: line 1 `fail-other` exited 1/);
});

test('a failing command in the middle of a block is reported, not only the last one', async (t) => {
  const { dir, lesson } = setup(src.replace('make-thing\n', 'echo start\nfail-early\nmake-thing\n'));
  const r = await verifyLesson(lesson, dir, world().exec, { settleTries: 1 });
  t.false(r.ok);
  t.regex(r.steps[0].problem!, /line 2 `fail-early` exited 1/);
});

test('a command marked # fails must fail; the block goes on after it', async (t) => {
  const good = setup(src.replace('make-thing\n', 'fail-now # fails: it should\nmake-thing\n'));
  t.true((await verifyLesson(good.lesson, good.dir, world().exec, { settleTries: 1 })).ok);
  const bad = setup(src.replace('make-thing\n', 'echo fine # fails\nmake-thing\n'));
  const r = await verifyLesson(bad.lesson, bad.dir, world().exec, { settleTries: 1 });
  t.regex(r.steps[0].problem!, /line 1 `echo fine # fails` was marked '# fails' but exited 0/);
});

test('fakes run on the state before the step, each after a restore; a fake that passes is reported', async (t) => {
  const fakes = '# A header comment.\n# fake: made something else\nmake-decoy\n\n# fake: made the thing itself\nmake-thing\n';
  const { dir, lesson } = setup(src, { 'fakes/thing.sh': fakes });
  const w = world();
  const r = await verifyLesson(lesson, dir, w.exec, { settleTries: 1 });
  t.deepEqual(
    r.steps[0].checks[0].fakes.map((f) => [f.title, f.check]),
    [
      ['made something else', 'fail'],
      ['made the thing itself', 'pass'],
    ],
  );
  t.regex(r.steps[0].problem!, /thing: fake "made the thing itself" \(fakes\/thing.sh:5\) passes the check/);
  t.deepEqual(w.ran, [
    'test-thing',
    'snapshot',
    'round: make-decoy',
    'round: make-thing',
    'make-thing',
    'test-thing',
    'test-other',
    'make-other',
    'test-other',
  ]);
  // The restore put the world back, so the step's own check still failed before and passes after.
  t.is(r.steps[0].checks[0].after, 'pass');
});

test('a fake that cannot run, or that leaves state behind, is reported', async (t) => {
  const { dir, lesson } = setup(src, { 'fakes/thing.sh': '# fake: broken\nfail-here\n' });
  t.regex(
    (await verifyLesson(lesson, dir, world().exec, { settleTries: 1 })).steps[0].problem!,
    /fake "broken".*the fake itself failed \(line 1 `fail-here` exited 1/,
  );
  const leaky = setup(src, { 'fakes/thing.sh': '# fake: leaves a decoy\nmake-decoy\n' });
  t.regex(
    (await verifyLesson(leaky.lesson, leaky.dir, world({ leaky: true }).exec, { settleTries: 1 })).steps[0].problem!,
    /left state behind on node1: Only in .*: decoy/,
  );
});

test('a fake with an undo section runs it before the restore', async (t) => {
  const { dir, lesson } = setup(src, { 'fakes/thing.sh': '# fake: decoy, then cleans up by hand\nmake-decoy\n# undo:\ndrop-decoy\n' });
  const w = world({ leaky: true });
  const r = await verifyLesson(lesson, dir, w.exec, { settleTries: 1 });
  t.true(r.ok, r.steps[0].problem);
  t.true(w.ran.includes('round: make-decoy'));
  t.is(readFileSync(join(dir, '01-v', 'fakes', 'thing.sh'), 'utf8').split('\n')[0], '# fake: decoy, then cleans up by hand');
});

test('a check that changes the sandbox is reported: skipping to a later step would not reach the same state', async (t) => {
  const { dir, lesson } = setup(fm + '\n## One {#one}\n\n```run\nmake-thing\n```\n' + check('thing', 'make-trace; test-thing'));
  const r = await verifyLesson(lesson, dir, world().exec, { settleTries: 1, skipFakes: true });
  t.false(r.ok);
  t.regex(r.steps[0].problem ?? '', /thing: the check changed the sandbox \(a check must only look\):\s+-> trace/);
});

test('the engine-side scripts are valid shell, with their awk programs quoted whole', (t) => {
  for (const [name, script] of Object.entries({ SNAPSHOT, RESTORE, check: readOnlyCheck('docker ps') })) {
    const r = spawnSync('bash', ['-n', '-c', script], { encoding: 'utf8' });
    t.is(r.status, 0, `${name}: ${r.stderr}`);
  }
});

import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitCommands } from '../../lessons/lib/commands.ts';
import { parseFakes } from '../../lessons/lib/fakes.ts';
import { loadLessons, parseLesson } from '../../lessons/lib/index.ts';

const fm = (extra = '') => `---\ntitle: A test lesson\nsummary: A lesson used by the parser tests.\nduration: 5\nlevel: beginner\n${extra}---\n`;
const check = (id: string, node = 'node1') =>
  '```check\nid: ' + id + '\ntitle: Something happened\nnode: ' + node + '\nscript: |\n  true\nfail: Do the thing.\n```\n';

test('a valid lesson parses into steps, commands, checks and quizzes with rendered markup', (t) => {
  const src =
    fm() +
    'Intro *text*.\n\n## First step {#first}\n\n```run\ndocker ps\n```\n\n' +
    check('c1') +
    '\n```quiz\nid: q1\nquestion: Pick one\noptions:\n  - text: right\n    correct: true\n    explain: Because.\n  - text: wrong\n    explain: No.\n```\n\n```hint\nTry **harder**.\n```\n';
  const { lesson, errors } = parseLesson('01-test', src);
  t.deepEqual(errors, []);
  t.is(lesson!.steps.length, 1);
  const s = lesson!.steps[0];
  t.is(s.id, 'first');
  t.deepEqual(
    s.commands.map((c) => [c.node, c.text, c.interactive]),
    [['node1', 'docker ps', false]],
  );
  t.is(s.checks[0].id, 'c1');
  t.is(s.quizzes[0].options.filter((o) => o.correct).length, 1);
  t.regex(s.html, /<h2 id="first">First step<\/h2>/);
  t.regex(s.html, /<div class="berth-cmd" data-node="node1" data-interactive="false"><pre><code>docker ps<\/code><\/pre><\/div>/);
  t.regex(s.html, /<div class="berth-check" data-check-id="c1" data-node="node1">/);
  t.regex(s.html, /<fieldset class="berth-quiz" data-quiz-id="q1" data-multiple="false">/);
  t.regex(s.html, /<details class="berth-hint"><summary>Hint<\/summary><p>Try <strong>harder<\/strong>/);
  t.regex(lesson!.introHtml, /<em>text<\/em>/);
});

test('markup is escaped, never passed through', (t) => {
  const { lesson } = parseLesson('01-test', fm() + '## S {#s}\n\n<script>alert(1)</script>\n\n```run\necho "<b>"\n```\n\n' + check('c'));
  t.false(lesson!.steps[0].html.includes('<script>'));
  t.regex(lesson!.steps[0].html, /echo &quot;&lt;b&gt;&quot;/);
});

const errorsOf = (src: string) => parseLesson('01-test', src).errors.map((e) => `${e.line}: ${e.message}`);

test('front matter errors name the key and its line', (t) => {
  const errs = errorsOf(fm('colour: blue\n') + '## S {#s}\n');
  t.true(
    errs.some((e) => /^6: front matter: .*colour/.test(e)),
    errs.join('\n'),
  );
  t.true(errorsOf('no front matter').some((e) => /^1: front matter missing/.test(e)));
  t.true(errorsOf(fm().replace('level: beginner', 'level: expert') + '## S {#s}\n').some((e) => /^5: front matter: level/.test(e)));
});

test('unknown constructs, bad YAML and bad checks are reported at their fence', (t) => {
  const body = '## S {#s}\n\n```chek\nid: x\n```\n\n```check\nid: [unclosed\n```\n\n```check\nid: ok\ntitle: t\n```\n\n```run colour=red\nls\n```\n';
  const errs = errorsOf(fm() + body);
  t.true(
    errs.some((e) => /^9: unknown construct `chek`: did you mean `check`/.test(e)),
    errs.join('\n'),
  );
  t.true(
    errs.some((e) => /^1[45]: check: invalid YAML/.test(e)),
    errs.join('\n'),
  );
  t.true(
    errs.some((e) => /^17: check: .*script/.test(e)),
    errs.join('\n'),
  );
  t.true(
    errs.some((e) => /^22: `run` does not take colour/.test(e)),
    errs.join('\n'),
  );
});

test('step rules: ids, nodes, exercises, checks for hands-on steps, verify for interactive steps', (t) => {
  const body =
    '## A {#a}\n\n```run\nls\n```\n\n## A again {#a}\n\n' +
    check('dup') +
    check('dup') +
    '\n## On node3 {#n3}\n\n' +
    check('far', 'node3') +
    '\n## Exercise: E {#e .exercise}\n\n```run\nls\n```\n\n## Live {#live}\n\n```run interactive\ndocker run -it debian\n```\n\n' +
    check('live-c') +
    '## No id\n';
  const errs = errorsOf(fm('nodes: 2\n') + body).join('\n');
  t.regex(errs, /step a has commands but no check/);
  t.regex(errs, /duplicate step id "a"/);
  t.regex(errs, /duplicate check id "dup"/);
  t.regex(errs, /check far uses node3, but the lesson has nodes: 2/);
  t.regex(errs, /exercise step e must not have run blocks/);
  t.regex(errs, /exercise step e needs at least one check/);
  t.regex(errs, /step live has interactive commands and checks, so it needs a verify block/);
  t.regex(errs, /step heading "No id" needs an id/);
});

test('quizzes need a correct option, and only one unless multiple', (t) => {
  const q = (opts: string, multiple = false) =>
    fm() + '## S {#s}\n\n```quiz\nid: q\nquestion: Which one?\nmultiple: ' + multiple + '\noptions:\n' + opts + '```\n';
  t.regex(errorsOf(q('  - text: a\n    explain: aaa\n  - text: b\n    explain: bbb\n')).join(), /no option is marked correct/);
  t.regex(
    errorsOf(q('  - text: a\n    correct: true\n    explain: aaa\n  - text: b\n    correct: true\n    explain: bbb\n')).join(),
    /2 options are correct but multiple is false/,
  );
  t.deepEqual(errorsOf(q('  - text: a\n    correct: true\n    explain: aaa\n  - text: b\n    correct: true\n    explain: bbb\n', true)), []);
});

test('the real lessons folder loads without errors', (t) => {
  const { lessons, errors } = loadLessons(join(import.meta.dirname, '..', '..', 'lessons'));
  t.deepEqual(errors, []);
  t.true(lessons.length >= 13);
  for (const l of lessons) {
    t.true(l.steps.length >= 4 && l.steps.length <= 12, `${l.id} has ${l.steps.length} steps`);
    t.true(l.steps.reduce((n, s) => n + s.quizzes.length, 0) >= 3, `${l.id} has at least 3 quizzes`);
    t.true(
      l.steps.some((s) => s.exercise),
      `${l.id} closes with an exercise`,
    );
  }
});

test('a command marked # fails must be able to fail, and the marker must follow a command', (t) => {
  const errs = errorsOf(fm() + '## S {#s}\n\n```run\nping -c1 nowhere || echo no # fails\n# fails\nfalse # fails: as shown\n```\n' + check('c')).join('\n');
  t.regex(errs, /^10: a command marked `# fails` must not hide its exit status/m);
  t.regex(errs, /^11: `# fails` must end the line of the command/m);
  t.notRegex(errs, /^12:/m);
});

test('blocks split into the commands a learner types, continuations and loops kept whole', (t) => {
  const cmds = splitCommands('echo a \\\n  b\n# a comment\n\nfor i in 1 2; do\n  echo "$i"\ndone\nfalse # fails: on purpose\ncat <<EOF\nx\nEOF\n');
  t.deepEqual(
    cmds.map((c) => [c.line, c.expectFail]),
    [
      [1, false],
      [5, false],
      [8, true],
      [9, false],
    ],
  );
  t.is(cmds[1].text, 'for i in 1 2; do\n  echo "$i"\ndone');
});

test('fakes files: one or more fakes with titles, nodes and undo sections; errors name the line', (t) => {
  const ok = parseFakes(
    '# Header.\n\n# fake: tagged busybox as debian\ndocker tag busybox debian\n# fake node=node2: typed on node2\ndocker run -d --name remote busybox sleep 1\n# undo:\ndocker rm -f remote\n',
    'f.sh',
  );
  t.deepEqual(ok.errors, []);
  t.deepEqual(
    ok.fakes.map((f) => [f.title, f.node, f.line, f.script.trim(), f.undo]),
    [
      ['tagged busybox as debian', 'node1', 3, 'docker tag busybox debian', ''],
      ['typed on node2', 'node2', 5, 'docker run -d --name remote busybox sleep 1', 'docker rm -f remote'],
    ],
  );
  const bad = parseFakes('docker ps\n# fake: x\n# fake node=node9: empty one\n# just a comment\n# undo:\n', 'f.sh')
    .errors.map((e) => `${e.line}: ${e.message}`)
    .join('\n');
  t.regex(bad, /^1: commands before the first # fake: line/m);
  t.regex(bad, /^2: a fake needs a title/m);
  t.regex(bad, /^3: fake node must be node1/m);
  t.regex(bad, /^3: fake "empty one" has no commands/m);
  t.regex(bad, /^3: fake "empty one" has an empty # undo: section/m);
  t.regex(parseFakes('# only comments\n', 'f.sh').errors[0].message, /no fakes in this file/);
});

test('fakes files: engine=rootful marks a shortcut only a rootful engine allows, beside node=', (t) => {
  const ok = parseFakes("# fake engine=rootful node=node2: the host's PID namespace\ndocker run --pid host busybox true\n# fake: plain\ntrue\n", 'f.sh');
  t.deepEqual(ok.errors, []);
  t.deepEqual(
    ok.fakes.map((f) => [f.title, f.node, f.engine]),
    [
      ["the host's PID namespace", 'node2', 'rootful'],
      ['plain', 'node1', undefined],
    ],
  );
  const bad = parseFakes('# fake engine=rootless: x y z\ntrue\n# fake colour=red: a b c\ntrue\n', 'f.sh')
    .errors.map((e) => `${e.line}: ${e.message}`)
    .join('\n');
  t.regex(bad, /^1: fake engine= can only be rootful, not rootless/m);
  t.regex(bad, /^3: a fake takes node= and engine=, not colour=/m);
});

test('the loader demands fakes for every check, three for checks an imitation could satisfy', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-fakes-'));
  mkdirSync(join(dir, '01-f', 'fakes'), { recursive: true });
  const logs = '```check\nid: logged\ntitle: The log says hi\nscript: docker logs x | grep -q hi\nfail: Run it.\n```\n';
  writeFileSync(join(dir, '01-f', 'lesson.md'), fm() + '## S {#s}\n\n```run\nls\n```\n\n' + check('plain') + '\n' + logs);
  writeFileSync(join(dir, '01-f', 'fakes', 'logged.sh'), '# fake: echo hi\necho hi\n');
  writeFileSync(join(dir, '01-f', 'fakes', 'nosuch.sh'), '# fake: x\ntrue\n');
  const { lessons, errors } = loadLessons(dir);
  const errs = errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('\n');
  t.is(lessons.length, 1, 'problems with fakes keep the lesson on the site');
  t.regex(errs, /fakes\/nosuch.sh:1: nosuch.sh names no check of 01-f/);
  t.regex(errs, /lesson.md:13: check plain has 0 fakes in fakes\/plain.sh; it needs at least 1/);
  t.regex(errs, /lesson.md:22: check logged has 1 fake in fakes\/logged.sh; it needs at least 3/);
});

test('sandbox notes: rendered hidden with the facts they are about; bad facts are errors at the fence', (t) => {
  const src =
    fm() +
    '```sandbox engine=rootless\nHere `top` *differs*.\n```\n\n## Step {#s}\n\n```sandbox engine=rootful ipvs=yes\nMesh works.\n```\n\n```run\ntrue\n```\n\n' +
    check('c1');
  const { lesson, errors } = parseLesson('01-test', src);
  t.deepEqual(errors, []);
  t.regex(
    lesson!.introHtml,
    /<aside class="berth-sandbox-note" data-engine="rootless" hidden><p class="berth-sandbox-note-title">About this sandbox<\/p><p>Here <code>top<\/code> <em>differs<\/em>/,
  );
  t.regex(lesson!.steps[0].html, /<aside class="berth-sandbox-note" data-engine="rootful" data-ipvs="yes" hidden>/);
  const bad = (info: string, body = 'text\n') =>
    parseLesson('01-test', fm() + '## Step {#s}\n\n```' + info + '\n' + body + '```\n\n```run\ntrue\n```\n\n' + check('c1')).errors.map(
      (e) => `${e.line}: ${e.message}`,
    );
  t.deepEqual(bad('sandbox engine=podman'), ['9: sandbox: engine must be rootless or rootful, not podman']);
  t.deepEqual(bad('sandbox'), ['9: a sandbox note names the sandboxes it is about (engine=…, ipvs=…)']);
  t.deepEqual(bad('sandbox ipvs'), ['9: sandbox: ipvs must be yes or no, not empty']);
  t.deepEqual(bad('sandbox kernel=6'), ['9: `sandbox` does not take kernel (it takes: engine, ipvs)']);
  t.deepEqual(bad('sandbox engine=rootful', '\n'), ['9: a sandbox note needs text']);
  t.deepEqual(bad('sandbx engine=rootful'), ['9: unknown construct `sandbx`: did you mean `sandbox`?']);
});

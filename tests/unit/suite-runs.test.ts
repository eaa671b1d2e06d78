import test from 'ava';
import { mergeRuns, parseTap, retryPlan } from '../lib/suite-runs.ts';

const tap = (lines: string[]) => parseTap(['TAP version 13', ...lines, '1..9'].join('\n'));

test('TAP: passes, failures and skips are told apart by title', (t) => {
  const r = tap(['ok 1 - a', 'not ok 2 - b (x)', 'ok 3 - c # SKIP not here', '# ok 4 - a comment']);
  t.deepEqual(r.passed, ['a']);
  t.deepEqual(r.failed, ['b (x)']);
  t.is(r.skipped, 1);
});

test('only the failed tests run again, unless the file is serial, a hook failed, or ava ended without naming one', (t) => {
  const failedB = tap(['ok 1 - a', 'not ok 2 - b']);
  t.deepEqual(retryPlan(1, failedB, "test('a', …)"), { kind: 'match', titles: ['b'] });
  t.is(retryPlan(1, failedB, "test.serial('a', …)").kind, 'file');
  t.is(retryPlan(1, tap(['not ok 1 - before hook']), "test('a', …)").kind, 'file');
  t.is(retryPlan(1, tap(['ok 1 - a']), "test('a', …)").kind, 'file');
  t.is(retryPlan(1, tap(['not ok 1 - a * b']), "test('a', …)").kind, 'file');
  t.deepEqual(retryPlan(0, tap(['ok 1 - a']), ''), { kind: 'none' });
});

test('a test that passes when run again counts as passed and is listed as flaky; failing twice is a failure', (t) => {
  const first = { code: 1, tap: tap(['ok 1 - a', 'not ok 2 - b', 'not ok 3 - c']) };
  const plan = retryPlan(first.code, first.tap, '');
  const again = mergeRuns(first, plan, { code: 1, tap: tap(['ok 1 - b', 'not ok 2 - c']) });
  t.deepEqual(again, { passed: 2, failed: ['c'], flaky: ['b'] });
});

test('a --match run that did not run the test proves nothing', (t) => {
  const first = { code: 1, tap: tap(['not ok 1 - b']) };
  const merged = mergeRuns(first, retryPlan(1, first.tap, ''), { code: 1, tap: tap([]) });
  t.deepEqual(merged.failed, ['(exit 1)', 'b']);
  t.deepEqual(merged.flaky, []);
});

test('after a whole-file run the second run decides every test; a crash without a title is "(exit N)"', (t) => {
  const crashed = { code: 1, tap: tap(['ok 1 - a']) };
  const plan = retryPlan(crashed.code, crashed.tap, '');
  t.deepEqual(mergeRuns(crashed, plan, { code: 0, tap: tap(['ok 1 - a', 'ok 2 - b']) }), {
    passed: 2,
    failed: [],
    flaky: ['(the whole file: it ended without naming a test, then passed)'],
  });
  t.deepEqual(mergeRuns(crashed, plan, { code: 1, tap: tap(['ok 1 - a']) }).failed, ['(exit 1)']);
  t.deepEqual(mergeRuns(crashed, { kind: 'none' }).failed, ['(exit 1)']);
});

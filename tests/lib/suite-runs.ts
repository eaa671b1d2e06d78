// How `npm test` reads one ava run (TAP) and decides what to run again.
//
// Why a second run at all: on a shared two-core machine a test can fail now and then for a reason that is not
// in the code under test (an Incus exec lost under load, a browser that stalls). Two sessions' work was thrown
// away for one such failure each. A real regression fails twice; a test that passes on its second run is
// counted as passed but listed as flaky, so it is followed up rather than hidden.

export interface TapResult {
  passed: string[];
  failed: string[];
  skipped: number;
}

/** The titles of the passing and failing tests in ava's TAP output. */
export function parseTap(out: string): TapResult {
  const result: TapResult = { passed: [], failed: [], skipped: 0 };
  for (const line of out.split('\n')) {
    const ok = /^ok \d+ - (.*)$/.exec(line);
    if (ok) {
      if (/# SKIP/.test(line)) result.skipped++;
      else result.passed.push(ok[1].trim());
      continue;
    }
    const bad = /^not ok \d+ - (.*)$/.exec(line);
    if (bad) result.failed.push(bad[1].trim());
  }
  return result;
}

export interface RunResult {
  code: number | null;
  tap: TapResult;
}

/** The failed titles of a run, or "(exit N)" when it ended badly without naming one. */
export function failures(run: RunResult): string[] {
  if (run.tap.failed.length || run.code === 0) return [...run.tap.failed];
  return [`(exit ${run.code})`];
}

export type RetryPlan = { kind: 'none' } | { kind: 'file'; why: string } | { kind: 'match'; titles: string[] };

/**
 * What to run again after a run that ended with `code`. Only the failed tests, by title, unless the file's
 * tests build on each other (`test.serial`), a hook failed, or ava ended badly without naming a test (a crash,
 * its timeout): then the whole file, since a title alone would not reproduce the state the test needs.
 */
export function retryPlan(code: number | null, tap: TapResult, source: string): RetryPlan {
  if (code === 0 && tap.failed.length === 0) return { kind: 'none' };
  if (tap.failed.length === 0) return { kind: 'file', why: `ava exited with ${code} without naming a failed test` };
  if (tap.failed.some((t) => /\bhook\b/.test(t))) return { kind: 'file', why: 'a hook failed' };
  if (/\btest\.serial\b/.test(source)) return { kind: 'file', why: 'its tests run in order and build on each other' };
  // ava's --match reads `*` as a wildcard and a leading `!` as negation; such a title is run with its file.
  if (tap.failed.some((t) => t.includes('*') || t.startsWith('!'))) return { kind: 'file', why: 'a title ava cannot match exactly' };
  return { kind: 'match', titles: tap.failed };
}

export interface SuiteOutcome {
  passed: number;
  /** Titles that failed on every run. */
  failed: string[];
  /** Titles that failed, then passed when run again. */
  flaky: string[];
}

/**
 * Merges a first run and its retry. After a whole-file retry, the second run decides every test; after a
 * `--match` retry, the first run's passes stand and the retry decides the failed ones. A run that ended badly
 * without naming a failed test counts as one failure, "(exit N)".
 */
export function mergeRuns(firstRun: RunResult, plan: RetryPlan, second?: RunResult): SuiteOutcome {
  const first = firstRun.tap;
  if (plan.kind === 'none' || !second) return { passed: first.passed.length, failed: failures(firstRun), flaky: [] };
  const failedAgain = failures(second);
  const stillFailing = new Set(failedAgain);
  if (plan.kind === 'file') {
    const flaky = first.failed.length
      ? first.failed.filter((t) => second.tap.passed.includes(t))
      : failedAgain.length
        ? []
        : ['(the whole file: it ended without naming a test, then passed)'];
    return { passed: second.tap.passed.length, failed: failedAgain, flaky };
  }
  const flaky = plan.titles.filter((t) => second.tap.passed.includes(t));
  // A --match run that passed nothing it was asked to run (a title ava did not find) proves nothing.
  const unproven = plan.titles.filter((t) => !second.tap.passed.includes(t) && !stillFailing.has(t));
  return { passed: first.passed.length + second.tap.passed.length, failed: [...failedAgain, ...unproven], flaky };
}

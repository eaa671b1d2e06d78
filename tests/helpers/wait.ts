// Waiting on a condition instead of sleeping: polls until the probe answers, or fails naming what it waited for.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolves with the probe's first answer other than undefined; a probe that throws counts as "not yet". `what` may be
 * a function, read when the time is up, so that the failure can say what was last seen.
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 250, what = 'the condition' }: { timeoutMs?: number; intervalMs?: number; what?: string | (() => string) } = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    await sleep(intervalMs);
  }
}

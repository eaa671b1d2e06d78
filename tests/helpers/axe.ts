// axe-core's accessibility checks, run in a Chromium page by the e2e suites.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

const axeSource = readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

export type Finding = { id: string; impact: string | null; targets: string[] };

/** axe-core's WCAG checks on the page as it is now: the serious and critical findings, which fail a test. */
export async function axe(page: Page): Promise<Finding[]> {
  await page.addScriptTag({ content: axeSource });
  const found = await page.evaluate(async () => {
    const w = window as unknown as {
      axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }> };
    };
    // WCAG 2.2 A/AA (target size among them) plus the earlier levels.
    const r = await w.axe.run(document, {
      resultTypes: ['violations'],
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return found.filter((f) => f.impact === 'serious' || f.impact === 'critical');
}

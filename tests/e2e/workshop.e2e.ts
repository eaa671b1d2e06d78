// A workshop in two real browsers (Debian's Chromium through playwright-core) against a real server:
// the instructor signs in and creates a workshop; a learner joins with its code in a second browser
// context and passes a check; the dashboard shows it live; the instructor watches the learner type in
// the shadow terminal, takes over, broadcasts, and ends the workshop.
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSite } from '../../site/build.ts';
import { axe } from '../helpers/axe.ts';
import { CHROMIUM } from '../helpers/chromium.ts';
import { firstAdminToken, startServer, type TestServer } from '../helpers/server.ts';

const root = resolve(import.meta.dirname, '..', '..');
const shots = join(root, 'tests', 'artifacts', 'e2e');
const LESSON = '02-first-containers';

let server: TestServer | undefined;
let browser: Browser | undefined;

test.before(async () => {
  mkdirSync(shots, { recursive: true });
  await buildSite();
});
let adminToken = '';
test.after.always(async () => {
  await browser?.close().catch(() => {});
  // A failed run must not leave its learner's sandbox behind (a stopped server keeps sessions).
  if (server && adminToken) {
    const r = await server.api('/api/workshops', { token: adminToken }).catch(() => null);
    const list = r?.status === 200 ? ((await r.json()) as { workshops: { id: string; state: string }[] }).workshops : [];
    for (const w of list) if (w.state !== 'ended') await server.api(`/api/workshops/${w.id}/end`, { method: 'POST', token: adminToken }).catch(() => null);
  }
  await server?.stop();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(shots, `workshop-${name}.png`) });
const textOf = (page: Page, sel: string) => page.evaluate((s) => document.querySelector(s)?.textContent ?? '', sel);
async function waitText(page: Page, sel: string, re: RegExp, timeout = 30_000) {
  await page.waitForFunction(([s, src]) => new RegExp(src).test(document.querySelector(s)?.textContent ?? ''), [sel, re.source] as const, {
    timeout,
    polling: 100,
  });
}

test.serial('an instructor runs a workshop: create, a learner joins and passes a check, shadow, take over, end', async (t) => {
  server = await startServer({ BERTH_POOL_SIZE: '1' });
  const token = firstAdminToken(server);
  t.truthy(token);
  adminToken = token;
  browser = await chromium.launch({
    ...CHROMIUM,
  });
  const errors: string[] = [];
  const instructorCtx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const learnerCtx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const ip = await instructorCtx.newPage();
  const lp = await learnerCtx.newPage();
  for (const p of [ip, lp]) p.on('pageerror', (e) => errors.push(String(e)));
  t.teardown(async () => {
    // On a failure, what each browser showed last.
    if (errors.length) console.error(`page errors: ${errors.join('\n')}`);
    await shot(ip, 'last-instructor').catch(() => {});
    await shot(lp, 'last-learner').catch(() => {});
  });

  // Sign in: a wrong token is refused, the right one opens the page.
  await ip.goto(`${server.url}/instructor/`);
  await ip.getByLabel('Instructor token').waitFor();
  t.deepEqual(await axe(ip), [], 'sign-in accessibility');
  await ip.getByLabel('Instructor token').fill('berth_admin_not-the-token-at-all-0000000000000000');
  await ip.getByRole('button', { name: 'Sign in' }).click();
  await ip.getByText('The server refused this token.').waitFor();
  await ip.getByLabel('Instructor token').fill(token);
  await ip.getByRole('button', { name: 'Sign in' }).click();
  await ip.getByRole('heading', { name: 'New workshop' }).waitFor();
  t.deepEqual(await axe(ip), [], 'workshop list and form accessibility');

  // Create: doors are open 30 minutes before the start, so the default start (in 15 minutes) lets learners in.
  await ip.getByLabel('Title').fill('Thursday class');
  await ip.getByLabel(/First containers/).check();
  await ip.getByLabel('Capacity (learners)').fill('5');
  await ip.getByLabel('Expected head count').fill('1');
  await ip.getByRole('button', { name: 'Create workshop' }).click();
  await ip.waitForURL(/\/instructor\/workshop\/\?id=/);
  await waitText(ip, '[data-live]', /^Live$/);
  const code = (await textOf(ip, '[data-code]')).trim();
  t.regex(code, /^[A-Z2-9]{6}$/);
  const joinUrl = await ip.locator('[data-join-link]').getAttribute('href');
  t.true(joinUrl!.endsWith(`/join/?code=${code}`));
  await ip.getByRole('button', { name: 'Start now' }).click();
  await waitText(ip, '[data-state-badge]', /Running/);
  await shot(ip, '01-dashboard-empty');

  // The learner joins with the link, lands on the lesson with the workshop's sandbox.
  await lp.goto(joinUrl!);
  await lp.getByText('Thursday class').waitFor();
  t.deepEqual(await axe(lp), [], 'join page accessibility');
  await lp.getByLabel('Your name (as the instructor will see it)').fill('Grace Hopper');
  await lp.getByRole('button', { name: 'Join' }).click();
  await lp.waitForURL(new RegExp(`/lessons/${LESSON}/`), { timeout: 60_000 });
  await waitText(lp, '[data-panel="node1/1"] .xterm-rows', /learner@node1:~\$/, 60_000);
  await waitText(ip, '[data-learners] tbody', /Grace Hopper/);
  t.is(await textOf(ip, '[data-counts]'), '(1 learner)');

  // The lesson page says it is a workshop, and whose seat this is (item 1); its timer counts the workshop, no idle limit (item 2).
  const header = lp.getByRole('banner');
  await header.getByText('Thursday class').waitFor({ timeout: 10_000 });
  t.true(await header.getByText('Grace Hopper').isVisible());
  await lp.locator('[data-timer]').getByText('Workshop ends in').waitFor();
  // What the timer counts is read after it has ticked (once a second) at least once more.
  await lp.waitForTimeout(1500);
  t.is(await lp.locator('[data-timer]').getAttribute('data-limit'), 'workshop');
  t.false(await lp.getByRole('button', { name: 'Extend' }).isVisible(), 'no Extend: the instructor owns the clock');
  t.false(await lp.getByRole('button', { name: 'End sandbox' }).isVisible(), 'a workshop sandbox is not ended from the lesson');
  {
    const st = await lp.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? 'null') as { id: string; token: string }, `berth.session.${LESSON}`);
    const v = (await (await server.api(`/api/sessions/${st.id}`, { token: st.token })).json()) as { idleExpiresAt: string | null };
    t.is(v.idleExpiresAt, null, 'the server reports no idle limit for a workshop session');
  }
  t.deepEqual(await axe(lp), [], 'learner lesson page in a workshop');

  // The learner runs the step and checks it: the dashboard row shows the passed check.
  await lp.locator('[data-panel="node1/1"] .xterm-helper-textarea').focus();
  // The step's interactive debian shell, started detached (-dit) so no one has to type exit: the check
  // demands -i, -t, debian and bash, which a quicker hello-world would not give.
  await lp.keyboard.type('docker run -dit --name explorer debian bash && echo explorer-$((6*7))\n');
  await waitText(lp, '[data-panel="node1/1"] .xterm-rows', /explorer-42/, 120_000);
  const check = lp.locator('[data-check-id="explorer-exists"]');
  await check.getByRole('button', { name: 'Check' }).click();
  await check.getByText(/^Passed/).waitFor({ timeout: 30_000 });
  const row = ip.locator('[data-learners] tbody tr', { hasText: 'Grace Hopper' });
  await row.locator('td.num').first().filter({ hasText: /^1/ }).waitFor({ timeout: 15_000 });
  // "Lesson · step" names the lesson and the step by title, and follows the learner's step (item 7).
  await row.getByText('First containers · An interactive container').waitFor({ timeout: 10_000 });
  // ...and moves with the learner without a check: a later step marked done is where the learner is now.
  await lp.locator('[data-step="background"]').getByLabel('I have done this step').check();
  await row.getByText('First containers · Run in the background and look inside').waitFor({ timeout: 10_000 });
  // A quiz answer in a workshop is judged by the server, whatever the page says (item 5).
  const q = lp.locator('[data-quiz-id="q-it-flags"]');
  await q.getByLabel('Isolation and TLS').check();
  await q.getByRole('button', { name: 'Answer' }).click();
  await q.getByText(/^Not quite/).waitFor();
  await row.locator('td.num').nth(1).filter({ hasText: /^1$/ }).waitFor({ timeout: 10_000 });
  {
    const learnerId = await row.getAttribute('data-learner');
    const wid = new URL(ip.url()).searchParams.get('id');
    const d = (await (await server.api(`/api/workshops/${wid}/learners/${learnerId}`, { token })).json()) as {
      quiz: { quizId?: string; id?: string; correct: boolean | null }[];
    };
    t.is(d.quiz.length, 1);
    t.is(d.quiz[0].correct, false, 'the server judged the answer');
    // A page cannot claim a right answer: the server judges what was chosen.
    const st = await lp.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? 'null') as { id: string; token: string }, `berth.session.${LESSON}`);
    await server.api(`/api/sessions/${st.id}/progress`, {
      method: 'POST',
      token: st.token,
      json: { lesson: LESSON, quiz: [{ id: 'q-it-flags', answer: ['1'], correct: true }] },
    });
    const d2 = (await (await server.api(`/api/workshops/${wid}/learners/${learnerId}`, { token })).json()) as { quiz: { correct: boolean | null }[] };
    t.is(d2.quiz[0].correct, false, 'a claimed "correct" is ignored');
  }
  await shot(ip, '02-dashboard-check');
  t.deepEqual(await axe(ip), [], 'dashboard accessibility');

  // Watch: the shadow terminal shows what the learner types; typing there does nothing.
  await ip.getByLabel('Your name').fill('Ada');
  await ip.getByLabel('Your name').press('Tab');
  await row.getByRole('button', { name: "Watch Grace Hopper's terminal" }).click();
  await waitText(ip, '[data-shadow-term] .xterm-rows', /learner@node1/);
  // Only the learner's real nodes and tabs are offered (item 8).
  t.deepEqual(await ip.locator('[data-shadow-tab] option').allInnerTexts(), ['1']);
  // The learner is told, with the instructor's name (item 4).
  await lp.getByRole('status').filter({ hasText: 'Ada is watching your terminal' }).waitFor({ timeout: 5000 });
  t.deepEqual(await axe(ip), [], 'dashboard while watching');
  await lp.locator('[data-panel="node1/1"] .xterm-helper-textarea').focus();
  await lp.keyboard.type('echo shadow-$((6*7))\n');
  await waitText(ip, '[data-shadow-term] .xterm-rows', /shadow-42/, 15_000);
  await ip.locator('[data-shadow-term] .xterm-helper-textarea').focus();
  await ip.keyboard.type('echo not-sent-$((1+1))\n');
  // Nothing to wait on: what must not happen is given a second to happen (the echo above took milliseconds).
  await ip.waitForTimeout(1000);
  t.false((await textOf(lp, '[data-panel="node1/1"] .xterm-rows')).includes('not-sent-2'), 'read-only watching sends nothing');
  await shot(ip, '03-shadow');

  // Take over (the second click): the instructor's typing reaches the learner's shell.
  await ip.getByRole('button', { name: 'Take over' }).click();
  await waitText(ip, '[data-shadow-status]', /Your keystrokes go to/);
  await lp.getByRole('status').filter({ hasText: 'Ada has taken over your terminal' }).waitFor({ timeout: 5000 });
  await ip.locator('[data-shadow-term] .xterm-helper-textarea').focus();
  await ip.keyboard.type('echo helped-$((3*3))\n');
  await waitText(lp, '[data-panel="node1/1"] .xterm-rows', /helped-9/, 15_000);

  // The learner resets their own sandbox: a fresh engine under the same session, still in the workshop.
  await lp.getByRole('button', { name: 'Reset sandbox' }).click();
  await lp.getByRole('dialog').getByRole('button', { name: 'Reset sandbox' }).click();
  await waitText(ip, '[data-learners] tbody', /resetting/, 15_000).catch(() => {
    /* may be over before the stream shows it */
  });
  await waitText(lp, '[data-panel="node1/1"] .xterm-rows', /learner@node1:~\$/, 60_000);
  await lp.locator('[data-panel="node1/1"] .xterm-helper-textarea').focus();
  await lp.keyboard.type('echo containers=$(docker ps -aq | wc -l)\n');
  await waitText(lp, '[data-panel="node1/1"] .xterm-rows', /containers=0/, 30_000);
  await row.getByText('ready').waitFor();
  t.is(await ip.locator('[data-learners] tbody tr').count(), 1, 'the same learner, not a second one');

  // Stop watching: the learner's banner goes.
  await ip.getByRole('button', { name: 'Stop watching' }).click();
  await lp.locator('[data-watch]').waitFor({ state: 'hidden', timeout: 5000 });

  // Broadcast: pushed to the learner's page at once, above the instructions, clear of the terminal and ports (item 7).
  await ip.getByLabel('Message', { exact: true }).fill('Five minutes left');
  const b0 = Date.now();
  await ip.getByRole('button', { name: 'Send to all' }).click();
  await lp.getByText('Five minutes left').waitFor({ timeout: 20_000 });
  const broadcastMs = Date.now() - b0;
  t.log(`broadcast send → shown on the learner's page: ${broadcastMs} ms`);
  console.log(`FIGURE broadcastToLearnerMs=${broadcastMs}`);
  t.true(broadcastMs < 3000, `broadcast took ${broadcastMs} ms`);
  const msgBox = await lp.locator('[data-workshop-messages]').boundingBox();
  const wbBox = await lp.locator('#workbench').boundingBox();
  t.true(!!msgBox && !!wbBox && msgBox.x + msgBox.width <= wbBox.x, 'the message box does not cover the workbench');

  // The dashboard at phone width: no sideways scroll, no serious axe finding, in both themes (item 8).
  await ip.setViewportSize({ width: 390, height: 844 });
  t.true(
    await ip.evaluate(() => document.documentElement.scrollWidth <= 390),
    `dashboard ${await ip.evaluate(() => document.documentElement.scrollWidth)} px wide at 390`,
  );
  t.deepEqual(await axe(ip), [], 'dashboard at phone width, light');
  await ip.getByRole('button', { name: 'Dark theme' }).click();
  t.deepEqual(await axe(ip), [], 'dashboard at phone width, dark');
  await ip.setViewportSize({ width: 1400, height: 1000 });

  // End: the learner's row says removed; the results stay in the table.
  await ip.getByRole('button', { name: 'End workshop…' }).click();
  await ip.getByRole('dialog').getByRole('button', { name: 'End workshop' }).click();
  await waitText(ip, '[data-state-badge]', /Ended/);
  await row.getByText('removed').waitFor({ timeout: 30_000 });
  await shot(ip, '04-ended');
  // After the end the join code steps back; the page says it no longer works (item 8).
  t.false(await ip.locator('[data-code]').isVisible(), 'no prominent join code after the end');
  await ip.getByText(/no longer lets anyone join/).waitFor();
  t.deepEqual(await axe(ip), [], 'dashboard after the end (dark)');
  // The learner sees that the workshop ended, with the way back to it, not a private sandbox (item 1).
  await lp.getByRole('heading', { name: 'The workshop has ended' }).waitFor({ timeout: 30_000 });
  t.true(await lp.getByRole('button', { name: 'Back to the workshop page' }).isVisible());
  t.false(await lp.getByRole('button', { name: 'Start a new sandbox' }).isVisible(), 'no silent private sandbox');
  t.true(await lp.getByRole('button', { name: 'Practise on my own (not part of the workshop)' }).isVisible());
  t.true(await lp.getByRole('button', { name: 'Open another terminal on this node' }).isDisabled());
  await lp.getByRole('button', { name: 'Dark theme' }).click();
  t.deepEqual(await axe(lp), [], 'learner page after the end, dark');
  await lp.setViewportSize({ width: 390, height: 844 });
  t.deepEqual(await axe(lp), [], 'learner page after the end, phone width');
  await shot(lp, '05-learner-ended');
  await lp.getByRole('button', { name: 'Back to the workshop page' }).click();
  await lp.waitForURL(/\/join\/\?code=/);
  await lp.getByText(/It has ended/).waitFor();
  t.deepEqual(await axe(lp), [], 'join page after the end');
  t.deepEqual(errors, []);
});

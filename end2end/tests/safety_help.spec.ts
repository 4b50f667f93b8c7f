// A message flagged for safety still gets its reply, with the help resources below it (in
// the student's language); a harmless one gets none. The dashboard's Alerts page lists the
// flag and axe-core finds nothing serious on it, in English and in Traditional Chinese.
//
// A classchat of its own: its classes are checked for safety (visibility `flagged`) and its
// dashboard is on; only the fake Open WebUI is shared.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Page } from '@playwright/test';

import { startClassroom, type Classroom } from './fixtures/classroom';
import { tempDir } from './fixtures/processes';
import { test as base, expect, WidgetPage } from './fixtures/widget_page';

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];
const ACCESS_CODE = 'safety-check-2024';
const ADMIN_PASSWORD = 'safety-admin-password';

const test = base.extend<{}, { classroom: Classroom }>({
  classroom: [
    async ({}, use) => {
      // One class from a classes file, its visibility `flagged` (an empty --access-code
      // leaves the fixture's own code out).
      const dir = tempDir('classchat-e2e-safety-classes-');
      const file = path.join(dir, 'classes.toml');
      writeFileSync(
        file,
        `[[class]]\nid = "bio"\ntitle = "Biology helper"\ncodes = ["${ACCESS_CODE}"]\nvisibility = "flagged"\n`,
      );
      const room = await startClassroom('safety', ACCESS_CODE, {
        accessCode: '',
        adminPassword: ADMIN_PASSWORD,
        extraArgs: ['--classes-file', file],
      });
      try {
        await use(room);
      } finally {
        await room.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    { scope: 'worker' },
  ],
});

/** The serious and critical axe findings on the whole page, or inside `selector` (axe
 *  follows the widget's open shadow root). */
async function axeFindings(page: Page, selector?: string): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async ([tags, selector]) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const axe = (window as any).axe;
    const r = await axe.run(selector ?? document, { runOnly: { type: 'tag', values: tags } });
    return (
      r.violations
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        .map((v: any) => `${v.id}: ${v.help} (${v.nodes.map((n: any) => JSON.stringify(n.target)).join(', ')})`)
    );
  }, [WCAG_TAGS, selector] as const);
}

test('a flagged message is answered with the help resources below it; a harmless one is not', async ({ page, classroom }) => {
  const widget = new WidgetPage(page, classroom.env);
  await widget.openSignedIn('Ada');
  const help = widget.host.getByTestId('cc-help');

  await widget.sendMessage('What makes a killer app?');
  await expect(widget.lastReply()).toHaveText('You said: What makes a killer app?');
  await widget.waitForReplyDone();
  await expect(help).toHaveCount(0);

  const flagged = 'Some days I want to kill myself';
  await widget.sendMessage(flagged);
  await expect(widget.lastReply()).toHaveText(`You said: ${flagged}`);
  await widget.waitForReplyDone();
  // Asia/Taipei: Taiwan's lines, under the widget's English heading.
  await expect(help).toBeVisible();
  await expect(help).toContainText('You are not alone');
  await expect(help).toContainText('1925');
  await expect(help).toContainText('1995');
  await expect(help).toHaveAttribute('role', 'status');
  expect(await axeFindings(page, 'classchat-widget'), 'the widget with help shown').toEqual([]);
});

test.describe('in Traditional Chinese', () => {
  test.use({ locale: 'zh-TW' });

  test('the help heading is in the student\'s language', async ({ page, classroom }) => {
    const widget = new WidgetPage(page, classroom.env);
    await widget.openSignedIn('小明');
    await widget.sendMessage('我真的不想活了');
    await expect(widget.lastReply()).toHaveText('You said: 我真的不想活了');
    await widget.waitForReplyDone();
    const help = widget.host.getByTestId('cc-help');
    await expect(help).toContainText('你並不孤單');
    await expect(help).toContainText('1925 安心專線');
  });
});

test('the Alerts page lists the flags and axe finds nothing serious on it, in both languages', async ({ page, classroom }) => {
  // A flag of our own, in case this test runs alone.
  const widget = new WidgetPage(page, classroom.env);
  await widget.openSignedIn('Ada');
  await widget.sendMessage('he said he will bring a gun to school');
  await widget.waitForReplyDone();

  const server = classroom.server.url;
  await page.goto(`${server}/admin/login`);
  await page.getByTestId('admin-login-password').fill(ADMIN_PASSWORD);
  await page.getByTestId('admin-login-submit').click();
  await expect(page).toHaveURL(/\/admin$/);

  await expect(async () => {
    await page.goto(`${server}/admin/alerts?lang=en`);
    await expect(page.getByTestId('alert-row').first()).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 10_000 });
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Safety alerts');
  await expect(page.getByTestId('alerts-table')).toContainText('violence');
  expect(await axeFindings(page), 'Alerts page (en)').toEqual([]);

  await page.goto(`${server}/admin/alerts?lang=zh-TW`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('安全警示');
  await expect(page.getByTestId('alerts-table')).toContainText('暴力');
  expect(await axeFindings(page), 'Alerts page (zh-TW)').toEqual([]);

  // Open one, then dismiss it: it stays listed, with who dismissed it.
  await page.getByTestId('alert-row').first().getByRole('link').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('警示');
  expect(await axeFindings(page), 'an opened alert (zh-TW)').toEqual([]);
  await page.goto(`${server}/admin/alerts?lang=en`);
  const row = page.getByTestId('alert-row').first();
  await row.getByRole('button', { name: /Dismiss/ }).click();
  await expect(page.getByRole('status')).toHaveText('Alert dismissed.');
  await expect(page.getByTestId('alert-row').first()).toContainText('Dismissed by admin');
});

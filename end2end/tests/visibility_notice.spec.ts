// A class whose teacher can read its conversations tells its students so, permanently:
// before the first message and in the panel's header, in the student's language. A class
// that keeps nothing (`off`, the default) shows no notice.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { test as base, expect, WidgetPage } from './fixtures/widget_page';
import { startClassroom, type Classroom } from './fixtures/classroom';
import { DashboardPage } from './fixtures/dashboard_page';
import type { Page } from '@playwright/test';

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ADMIN_PASSWORD = 'e2e-visibility-password';

/** axe's serious and critical WCAG 2.x A/AA violations in `scope` (a selector, or the page). */
async function axeViolations(page: Page, scope: string | null): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (scope) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const axe = (window as any).axe;
    const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
    const r = await axe.run(scope ?? document, { runOnly: { type: 'tag', values: tags } });
    return r.violations
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      .map((v: any) => `${v.id}: ${v.help} ${v.nodes.map((n: any) => JSON.stringify(n.target)).join(' ')}`);
  }, scope);
}

const CLASSES = `
[[class]]
id = "open-book"
title = "Open book"
codes = ["open-book-11"]
visibility = "full"

[[class]]
id = "quiet"
title = "Quiet"
codes = ["quiet-room-22"]

[[class]]
id = "watchful"
title = "Watchful"
codes = ["watchful-33"]
visibility = "flagged"
`;

const NOTICES = {
  en: {
    full: 'Your teacher can read conversations in this class.',
    flagged: 'Your teacher is shown messages flagged for safety.',
  },
  'zh-TW': {
    full: '老師可以閱讀這個班級的對話。',
    flagged: '老師會看到被標示為安全疑慮的訊息。',
  },
} as const;

const test = base.extend<{}, { classroom: Classroom }>({
  classroom: [
    async ({}, use) => {
      const file = path.join(os.tmpdir(), `classchat-e2e-visibility-${process.pid}.toml`);
      writeFileSync(file, CLASSES);
      const room = await startClassroom('visibility', 'open-book-11', {
        classesFile: file,
        adminPassword: ADMIN_PASSWORD,
      });
      try {
        await use(room);
      } finally {
        await room.stop();
      }
    },
    { scope: 'worker' },
  ],
});

for (const locale of ['en', 'zh-TW'] as const) {
  test(`the notice shows in a full and a flagged class and not in an off class (${locale})`, async ({ browser, classroom }) => {
    const context = await browser.newContext({ locale });
    const page = await context.newPage();
    const widget = new WidgetPage(page, classroom.env);
    const notice = widget.messages.getByTestId('cc-notice');
    const header = widget.panel.getByTestId('cc-notice-header');
    await widget.goto();
    await widget.open();

    for (const [code, kind] of [['open-book-11', 'full'], ['watchful-33', 'flagged']] as const) {
      await widget.signIn(code, 'Mei');
      await expect(widget.chat).toBeVisible();
      // Before the first message, and in the header, the whole time.
      await expect(notice).toHaveText(NOTICES[locale][kind]);
      await expect(header).toHaveText(NOTICES[locale][kind]);
      await expect(widget.msgs()).toHaveCount(0);
      expect(await axeViolations(page, 'classchat-widget'), 'the notice passes axe').toEqual([]);
      if (kind === 'full') {
        await widget.sendMessage('Is my teacher reading this?');
        await widget.waitForReplyDone();
        await expect(notice).toHaveText(NOTICES[locale][kind]);
        await expect(header).toHaveText(NOTICES[locale][kind]);
        // A reload keeps it: the stored sign-in carries the visibility.
        await page.reload();
        await widget.open();
        await expect(widget.chat).toBeVisible();
        await expect(header).toHaveText(NOTICES[locale][kind]);
        await expect(notice).toHaveText(NOTICES[locale][kind]);
      }
      await widget.signOut.click();
    }

    await widget.signIn('quiet-room-22', 'Mei');
    await expect(widget.chat).toBeVisible();
    await widget.sendMessage('Nobody keeps this.');
    await widget.waitForReplyDone();
    await expect(notice).toHaveCount(0);
    await expect(header).toHaveCount(0);
    await context.close();
  });
}

test('the dashboard lists, searches and opens a full class\'s conversations, axe-clean in both languages', async ({ browser, classroom }) => {
  const student = await browser.newContext({ locale: 'en' });
  const widget = new WidgetPage(await student.newPage(), classroom.env);
  await widget.goto();
  await widget.open();
  await widget.signIn('open-book-11', 'Rosalind');
  await widget.sendMessage('Why do onions make me cry?');
  await widget.waitForReplyDone();
  await student.close();

  for (const locale of ['en', 'zh-TW'] as const) {
    const teacher = await browser.newContext({ locale });
    const dash = new DashboardPage(await teacher.newPage(), classroom.server.url);
    const page = dash.page;
    await dash.signIn(ADMIN_PASSWORD);
    const list = `${classroom.server.url}/admin/classes/open-book/conversations`;
    // (The other tests' students in this class are listed too.)
    const rows = page.getByTestId('admin-conversation-row');
    // The exchange is written just after the reply: reload until it is listed.
    await expect(async () => {
      await page.goto(list);
      await expect(rows.filter({ hasText: 'Rosalind' })).toHaveCount(1, { timeout: 500 });
    }).toPass({ timeout: 10_000 });
    await expect(page.locator('html')).toHaveAttribute('lang', locale);
    expect(await axeViolations(page, null), `list (${locale})`).toEqual([]);

    await page.getByRole('searchbox').fill('nothing like this');
    await page.getByRole('searchbox').press('Enter');
    await expect(page.getByTestId('admin-conversations-empty')).toBeVisible();
    await page.getByRole('searchbox').fill('ONIONS');
    await page.getByRole('searchbox').press('Enter');
    await expect(rows).toHaveCount(1);
    await expect(rows).toContainText('Rosalind');

    await rows.getByRole('link').click();
    await expect(page.getByTestId('admin-exchange-student')).toHaveText('Why do onions make me cry?');
    await expect(page.locator('html')).toHaveAttribute('lang', locale);
    expect(await axeViolations(page, null), `conversation (${locale})`).toEqual([]);

    await page.goto(`${classroom.server.url}/admin/conversation-reads`);
    await expect(page.getByTestId('admin-read-row').first()).toContainText('Rosalind');
    expect(await axeViolations(page, null), `access log (${locale})`).toEqual([]);
    await teacher.close();
  }
});

// Personal codes (issue 24): the administrator makes a class, pastes a list of names on its
// "Personal codes and allowances" page and gets one code per student as cards; a student
// signs in with one in the widget (typing another name, which is not used), chats, and the
// dashboard shows the name the teacher pasted. axe-core scans the new pages.
//
// Uses the shared classchat (global-setup.ts runs it with the dashboard on); the class made
// here is a new one, so other specs' classes and codes are untouched.
import { readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';

import { DashboardPage, adminPassword } from './fixtures/dashboard_page';
import { test, expect, WidgetPage } from './fixtures/widget_page';

test.describe.configure({ timeout: 120_000 });

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

/** Serious and critical WCAG 2.x A/AA violations on the whole page. */
async function axeScan(page: Page, what: string) {
  // Evaluated rather than added as a <script>: the dashboard's policy allows no script.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const bad = await page.evaluate(async (tags) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const axe = (window as any).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return (
      r.violations
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        .map((v: any) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n: any) => JSON.stringify(n.target)).join('\n  ')}`)
    );
  }, WCAG_TAGS);
  expect(bad, `${what}: axe found serious or critical violations:\n${bad.join('\n')}`).toEqual([]);
}

test('pasted names become codes, and a student signed in with one shows under the teacher\'s name', async ({
  page,
  browser,
  e2e,
  upstream: _,
}) => {
  const adminContext = await browser.newContext();
  try {
    const admin = new DashboardPage(await adminContext.newPage(), e2e.serverUrl);
    const a = admin.page;
    await admin.signIn(adminPassword());
    await a.goto(`${e2e.serverUrl}/admin/classes/new?lang=en`);
    await a.getByLabel('Title').fill('Biology 7B');
    await a.getByTestId('class-save').click();
    await expect(a).toHaveURL(/\/admin\/classes\/c_[a-z0-9]+\/settings\?done=created$/);
    const classId = new URL(a.url()).pathname.split('/')[3];

    await a.getByTestId('students-link').click();
    await expect(a).toHaveURL(new RegExp(`/admin/classes/${classId}/students$`));
    for (const lang of ['zh-TW', 'en']) {
      await a.goto(`${e2e.serverUrl}/admin/classes/${classId}/students?lang=${lang}`);
      await expect(a.locator('html')).toHaveAttribute('lang', lang);
      await axeScan(a, `the personal codes page in ${lang}`);
    }
    await expect(a.getByTestId('allowance-scope')).toContainText('their limits stay per sign-in');

    // Paste a column of names.
    await a.getByLabel("Students' names, one per line").fill('Mei Lin\nChen Wei\n\nAnanya Rao\n');
    await a.getByTestId('names-submit').click();
    await expect(a).toHaveURL(/\/students\/cards\?ticket=/);
    await expect(a.getByTestId('code-card')).toHaveCount(3);
    await expect(a.getByTestId('card-name')).toHaveText(['Mei Lin', 'Chen Wei', 'Ananya Rao']);
    await expect(a.getByTestId('code-card').first()).toContainText(`${e2e.serverUrl}/embed`);
    const code = (await a.getByTestId('card-code').first().innerText()).trim();
    expect(code).toMatch(/^[a-z2-9]{4}-[a-z2-9]{4}$/);
    await axeScan(a, 'the cards page');
    // Printed, only the cards remain.
    await a.emulateMedia({ media: 'print' });
    await expect(a.locator('.admin-bar')).toBeHidden();
    await expect(a.getByTestId('code-card').first()).toBeVisible();
    await a.emulateMedia({ media: 'screen' });
    // Listed without their codes.
    await a.goto(`${e2e.serverUrl}/admin/classes/${classId}/students`);
    await expect(a.getByTestId('code-row')).toHaveCount(3);
    await expect(a.getByTestId('codes')).not.toContainText(code);

    // The student signs in with the personal code in the widget's code field.
    const widget = new WidgetPage(page, { ...e2e, accessCode: code });
    await widget.openSignedIn('Someone Else');
    await widget.sendMessage('What does a ribosome do?');
    await widget.waitForReplyDone();
    await expect(widget.lastReply()).toContainText('What does a ribosome do?');

    // The dashboard shows the pasted name, not the typed one.
    await a.goto(`${e2e.serverUrl}/admin/classes/${classId}`);
    await expect(async () => {
      await a.reload();
      await expect(a.locator('main')).toContainText('Mei Lin', { timeout: 1_000 });
    }).toPass({ timeout: 15_000 });
    await expect(a.locator('main')).not.toContainText('Someone Else');
  } finally {
    await adminContext.close();
  }
});

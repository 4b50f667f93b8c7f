// A teacher's whole path through the dashboard: the administrator invites them, they set a
// password from the link, sign in with their email, create a class with two activities,
// copy an activity's embed snippet, and a student signs in with that activity's code and
// chats. Then axe-core scans every dashboard page in English and Traditional Chinese.
//
// Uses the shared classchat (global-setup.ts runs it with the dashboard on); the classes
// made here are new ones, so other specs' class and code are untouched.
import { readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';

import { DashboardPage, adminPassword } from './fixtures/dashboard_page';
import { test, expect, WidgetPage } from './fixtures/widget_page';

// Two browser contexts, a dozen pages each scanned twice: more than the default 30 s on a
// loaded two-core machine.
test.describe.configure({ timeout: 120_000 });

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];
const PASSWORD = 'a teacher passphrase 2026';

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

/** Opens `path` in both languages and scans each. */
async function scanBothLanguages(page: Page, serverUrl: string, path: string) {
  for (const lang of ['en', 'zh-TW']) {
    const sep = path.includes('?') ? '&' : '?';
    await page.goto(`${serverUrl}${path}${sep}lang=${lang}`);
    await expect(page.locator('html')).toHaveAttribute('lang', lang);
    await axeScan(page, `${path} in ${lang}`);
  }
  // Back to English for the rest of the path (the link's choice is remembered).
  await page.goto(`${serverUrl}${path}${path.includes('?') ? '&' : '?'}lang=en`);
}

test('a teacher is invited, makes a class with two activities, and a student chats in one', async ({
  page,
  browser,
  e2e,
  upstream: _,
}) => {
  const email = `mei.${Date.now()}@school.example`;

  // The administrator invites the teacher; the link is shown once.
  const adminContext = await browser.newContext();
  const teacherContext = await browser.newContext();
  try {
    const admin = new DashboardPage(await adminContext.newPage(), e2e.serverUrl);
    await admin.signIn(adminPassword());
    await admin.page.getByTestId('nav-teachers').click();
    await expect(admin.page).toHaveURL(/\/admin\/teachers/);
    await admin.page.getByLabel('Email address').fill(email);
    await admin.page.getByLabel('Name').fill('Mei Lin');
    await admin.page.getByTestId('invite-submit').click();
    const link = await admin.page.getByTestId('invitation-link').inputValue();
    expect(link).toContain('/admin/invitation?code=');
    await scanBothLanguages(admin.page, e2e.serverUrl, '/admin/teachers');
    await expect(admin.page.getByTestId('teachers')).toContainText(email);

    // The teacher sets a password and signs in with their email.
    const t = await teacherContext.newPage();
    await t.goto(link.trim());
    await t.getByLabel('New password').fill(PASSWORD);
    await t.getByLabel('The same password again').fill(PASSWORD);
    await t.getByRole('button', { name: 'Set password' }).click();
    await expect(t.getByRole('heading', { name: 'Your password is set' })).toBeVisible();
    await t.getByTestId('invitation-sign-in').click();
    await expect(t).toHaveURL(/\/admin\/login$/);
    await scanBothLanguages(t, e2e.serverUrl, '/admin/login');
    await t.getByTestId('admin-login-email').fill(email);
    await t.getByTestId('admin-login-password').fill(PASSWORD);
    await t.getByTestId('admin-login-submit').click();
    await expect(t).toHaveURL(/\/admin\/classes$/);
    await expect(t.getByRole('heading', { name: 'My classes' })).toBeVisible();
    await scanBothLanguages(t, e2e.serverUrl, '/admin/classes');
    await scanBothLanguages(t, e2e.serverUrl, '/admin/tokens');
    await t.goto(`${e2e.serverUrl}/admin/classes?lang=en`);

    // A class with two activities.
    await t.getByTestId('new-class').click();
    await scanBothLanguages(t, e2e.serverUrl, '/admin/classes/new');
    await t.getByLabel('Title').fill('Biology 7A');
    await t.getByLabel('System prompt').fill('You are a patient biology tutor.');
    await t.getByTestId('class-save').click();
    await expect(t).toHaveURL(/\/admin\/classes\/c_[a-z0-9]+\/settings\?done=created$/);
    const classPath = new URL(t.url()).pathname;
    const codes: string[] = [];
    for (const title of ['Lab report helper', 'Exam revision']) {
      const form = t.getByTestId('add-activity');
      await form.getByLabel('Title').fill(title);
      await form.getByTestId('add-activity-submit').click();
      await expect(t).toHaveURL(/\/admin\/activities\/a_[a-z0-9]+\/code\?ticket=/);
      await expect(t.getByTestId('admin-new-code')).toContainText(title);
      codes.push((await t.getByTestId('activity-code').innerText()).trim());
      if (codes.length === 1) await axeScan(t, 'the one-time code page');
      await t.getByRole('link', { name: 'Back to the class' }).click();
    }
    expect(codes[0]).not.toBe(codes[1]);
    await expect(t.getByTestId('activity')).toHaveCount(2);
    await scanBothLanguages(t, e2e.serverUrl, classPath);
    await scanBothLanguages(t, e2e.serverUrl, classPath.replace(/\/settings$/, '/audit'));

    await t.goto(`${e2e.serverUrl}${classPath}`);

    // The embed snippet of the second activity, as the teacher copies it.
    const snippet = await t.getByTestId('activity').nth(1).getByTestId('embed-snippet').inputValue();
    expect(snippet).toContain(`${e2e.serverUrl}/widget.js`);
    expect(snippet).toMatch(/^<script src=".*" async/);

    // A student on the host page (which carries the same snippet) signs in with the second
    // activity's code and chats.
    const widget = new WidgetPage(page, { ...e2e, accessCode: codes[1] });
    await widget.openSignedIn('Ada');
    await widget.sendMessage('What does a ribosome do?');
    await widget.waitForReplyDone();
    await expect(widget.lastReply()).toContainText('What does a ribosome do?');
  } finally {
    await adminContext.close();
    await teacherContext.close();
  }
});

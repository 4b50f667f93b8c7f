// A teacher signs in to the dashboard, sees what a student used, rotates the class's
// access code, and the student's widget asks for the new code at their next message.
//
// The read-only test uses the shared server from global-setup.ts. Rotation changes the
// class's code, which every other spec relies on, so that test gets a classchat (and a host
// page) of its own; only the fake Open WebUI is shared.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import path from 'node:path';

import { DashboardPage, adminPassword } from './fixtures/dashboard_page';
import { startClassChat, tempDir, type Server } from './fixtures/processes';
import { test as base, expect, e2eEnv, WidgetPage } from './fixtures/widget_page';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startHostServer } = require('../host/serve.js');

const CLASS_TITLE = 'Biology helper';

/** A classchat with the dashboard on, its host page, and what to sign in with. */
interface Classroom {
  server: Server;
  hostUrl: string;
  accessCode: string;
  adminPassword: string;
}

const test = base.extend<{}, { classroom: Classroom }>({
  classroom: [
    async ({}, use) => {
      const dir = tempDir('classchat-e2e-dashboard-');
      const serverRef = { url: '' };
      const host: { server: HttpServer; url: string } = await startHostServer(() => serverRef.url);
      let server: Server | undefined;
      try {
        const accessCode = 'rotate-me-2024';
        const password = 'rotation-admin-password';
        server = await startClassChat(dir, {
          accessCode,
          upstreamUrl: e2eEnv().upstreamUrl,
          allowedOrigins: host.url,
          adminPassword: password,
        });
        serverRef.url = server.url;
        await use({ server, hostUrl: host.url, accessCode, adminPassword: password });
      } finally {
        await server?.proc.stop();
        host.server.closeAllConnections();
        await new Promise<void>((r) => host.server.close(() => r()));
        // Keep this server's log beside the shared ones (see global-setup.ts).
        try {
          const out = path.join(__dirname, '..', 'test-results', 'server-logs');
          mkdirSync(out, { recursive: true });
          if (server) cpSync(server.proc.logFile, path.join(out, 'classchat-dashboard.log'));
        } catch {
          // Logs are a convenience.
        }
        if (!process.env.E2E_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
      }
    },
    { scope: 'worker' },
  ],
});

test('the dashboard wants the password, then shows what a student used', async ({ widget, e2e, browser }) => {
  // A student chats through the widget on the host page.
  await widget.openSignedIn('Grace');
  await widget.sendMessage('What does a mitochondrion do?');
  await widget.waitForReplyDone();

  // The teacher, in a browser of their own.
  const teacher = await browser.newContext();
  try {
    const dash = new DashboardPage(await teacher.newPage(), e2e.serverUrl);
    await dash.gotoSignIn();
    await dash.submitPassword('not-the-admin-password');
    await expect(dash.loginError).toBeVisible();
    await expect(dash.loginError).toContainText(/password/i);
    await expect(dash.page).toHaveURL(/\/admin\/login$/);

    await dash.submitPassword(adminPassword());
    await expect(dash.page).toHaveURL(/\/admin$/);

    const row = dash.page.getByTestId('admin-class-row').filter({ hasText: CLASS_TITLE });
    await expect(row).toHaveCount(1);
    const classId = (await row.getAttribute('data-class-id'))!;
    await dash.waitForUsage(classId);
    expect(await dash.stat(row, 'admin-tokens-today')).toBeGreaterThan(0);
    expect(await dash.stat(row, 'admin-active-sessions')).toBeGreaterThan(0);
    const chart = row.getByTestId('admin-chart');
    await expect(chart.locator('svg rect')).toHaveCount(168);
    await expect(chart).toHaveAttribute('data-total', /^[1-9]\d*$/);
    await expect(chart.locator('svg')).toHaveAttribute('aria-label', /in total/);

    // The class page lists the student by name, with what they used.
    await row.getByRole('link', { name: CLASS_TITLE }).first().click();
    await expect(dash.page).toHaveURL(new RegExp(`/admin/classes/${classId}$`));
    // (Other specs' students may have been counted first: wait for this one's row.)
    const student = dash.studentRows.filter({ hasText: 'Grace' }).first();
    await expect(async () => {
      await dash.page.reload();
      await expect(student).toBeVisible({ timeout: 500 });
    }).toPass({ timeout: 10_000 });
    await expect(student.locator('td[data-label="Messages"]')).not.toHaveText('0');
    await expect(student.getByTestId('admin-revoke')).toBeVisible();
  } finally {
    await teacher.close();
  }
});

test('rotating the code shows it once and sends the student back to the code form', async ({
  page,
  browser,
  e2e,
  upstream: _,
  classroom,
}) => {
  // Two browser contexts, several sign-ins and replies: about 25 s of the default 30 s on
  // a loaded two-core machine, where it once ran out. More time, not a retry.
  test.slow();
  const widget = new WidgetPage(page, {
    ...e2e,
    hostUrl: classroom.hostUrl,
    serverUrl: classroom.server.url,
    accessCode: classroom.accessCode,
  });
  await widget.openSignedIn('Rosalind');
  await widget.sendMessage('First question');
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toContainText('First question');

  const teacher = await browser.newContext();
  try {
    const dash = new DashboardPage(await teacher.newPage(), classroom.server.url);
    await dash.signIn(classroom.adminPassword);
    const row = dash.page.getByTestId('admin-class-row').filter({ hasText: CLASS_TITLE });
    const classId = (await row.getAttribute('data-class-id'))!;
    await dash.waitForUsage(classId);

    await dash.gotoClass(classId);
    await expect(dash.studentRows.filter({ hasText: 'Rosalind' })).toHaveCount(1);
    await expect(dash.rotate).toContainText(/rotate/i);
    await expect(dash.page.getByText('every student must enter the new code')).toBeVisible();
    await dash.rotate.click();

    // The new code, once, with what it means.
    await expect(dash.newCode).toBeVisible();
    await expect(dash.newCode).toContainText('shown only once');
    await expect(dash.flash).toBeVisible();
    const newCode = (await dash.newCode.locator('code').innerText()).trim();
    expect(newCode).toMatch(/^[a-z0-9-]{6,}$/);
    expect(newCode).not.toBe(classroom.accessCode);
    await dash.gotoClass(classId);
    await expect(dash.page.getByTestId('admin-class-row')).toHaveCount(0);
    await expect(dash.newCode).toHaveCount(0);
    await expect(dash.page.getByTestId('admin-override')).toContainText('codes');

    // The student's next message finds the session ended: the widget asks for the code,
    // and the conversation so far is still there.
    await widget.sendMessage('Second question');
    await expect(widget.login).toBeVisible();
    await expect(widget.host.getByTestId('cc-login-notice')).toContainText(/access code/i);

    await widget.signIn(classroom.accessCode);
    await expect(widget.loginError).toBeVisible();
    await expect(widget.chat).toBeHidden();

    await widget.code.fill(newCode);
    await widget.loginSubmit.click();
    await expect(widget.chat).toBeVisible();
    await expect(widget.msgs('user').first()).toHaveText('First question');
    await expect(widget.msgs('assistant').first()).toContainText('First question');
    // The message the old session could not send waits for a retry, which now goes through.
    await expect(widget.msgs('user').last()).toHaveText('Second question');
    await widget.retry.click();
    await widget.waitForReplyDone();
    await expect(widget.lastReply()).toContainText('Second question');

    // Revoking the student's sessions signs them out at their next message too.
    // Two sessions by now, one per sign-in (the second without a name); the new one is
    // listed once the usage of its first reply is written, just after the reply ends.
    await expect(async () => {
      await dash.gotoClass(classId);
      await expect(dash.studentRows).toHaveCount(2, { timeout: 500 });
    }).toPass({ timeout: 10_000 });
    await expect(dash.studentRows.filter({ hasText: /anonymous · [0-9a-f]{8}/ })).toHaveCount(1);
    const revoke = dash.page.getByTestId('admin-revoke');
    for (let left = 2; left > 0; left--) {
      await revoke.first().click();
      await expect(dash.page).toHaveURL(/\?done=revoked$/);
      await expect(dash.flash).toContainText(/revoked/i);
      await expect(revoke).toHaveCount(left - 1);
      // Back to the plain address, so the next round's ?done=revoked means a new answer.
      await dash.gotoClass(classId);
    }
    await expect(dash.page.getByTestId('admin-revoked')).toHaveCount(2);
    await widget.sendMessage('Third question');
    await expect(widget.login).toBeVisible();
  } finally {
    await teacher.close();
  }
});

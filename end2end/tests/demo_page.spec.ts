// Someone tries classchat with `--demo` and no Open WebUI: the landing page explains
// itself and its own widget answers from the built-in demo responder.
import { test as base, expect, WidgetPage } from './fixtures/widget_page';
import { startClassChat, tempDir, type Server } from './fixtures/processes';
import { rmSync } from 'node:fs';

const test = base.extend<{}, { demoServer: Server }>({
  demoServer: [
    async ({}, use) => {
      const dir = tempDir('classchat-e2e-demo-');
      const server = await startClassChat(dir, { demo: true });
      try {
        await use(server);
      } finally {
        await server.proc.stop();
        if (!process.env.E2E_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
      }
    },
    { scope: 'worker' },
  ],
});

test('the demo landing page shows the snippet and a working widget', async ({ page, e2e, demoServer }) => {
  await page.goto(`${demoServer.url}/`);
  await expect(page.getByTestId('demo-banner')).toBeVisible();
  await expect(page.getByTestId('demo-banner')).toContainText('demo-code');
  await expect(page.getByTestId('embed-snippet')).toContainText(`<script src="${demoServer.url}/widget.js"`);

  const widget = new WidgetPage(page, { ...e2e, serverUrl: demoServer.url, accessCode: 'demo-code' });
  await expect(widget.bubble).toBeVisible();
  await widget.open();
  await widget.signIn('demo-code');
  await expect(widget.chat).toBeVisible();
  await widget.sendMessage('Hello, is this thing on?');
  await expect(widget.msgs('user').last()).toHaveText('Hello, is this thing on?');
  await expect(widget.lastReply()).toContainText('classchat demo');
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toContainText('Hello, is this thing on?');
});

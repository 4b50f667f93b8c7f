// The iframe snippet on a page that strips scripts, the shareable /embed link, and the
// framing policy: /embed refuses origins outside ALLOWED_ORIGINS (global-setup.ts sets it
// to the host page's origin).
import { test, expect, WidgetPage } from './fixtures/widget_page';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startHostServer } = require('../host/serve.js');

test('iframe snippet only: sign in, chat, and a reload keeps the conversation', async ({ page, e2e, upstream }) => {
  await page.goto(`${e2e.hostUrl}/iframe-only.html`);
  const w = new WidgetPage(page, e2e, page.frameLocator('iframe'));
  await expect(w.title).toHaveText('Biology helper');
  // Nothing opened it, so there is nothing to close.
  await expect(w.close).toBeHidden();
  await w.signIn(e2e.accessCode, 'Ada');
  await upstream.setReply('Ribosomes build proteins.');
  await w.sendMessage('What do ribosomes do?');
  await expect(w.lastReply()).toHaveText('Ribosomes build proteins.');
  await w.waitForReplyDone();

  await page.reload();
  await expect(w.input).toBeEditable();
  await expect(w.msgs('user')).toHaveText(['What do ribosomes do?']);
  await expect(w.lastReply()).toHaveText('Ribosomes build proteins.');
});

test('the /embed link works as a page of its own', async ({ page, e2e }) => {
  await page.goto(`${e2e.serverUrl}/embed?title=Biology+helper&lang=zh-TW`);
  const w = new WidgetPage(page, e2e);
  await expect(w.title).toHaveText('Biology helper');
  await expect(w.close).toBeHidden();
  await expect(w.code).toBeEditable();
  const box = (await w.panel.boundingBox())!;
  expect(box.height).toBeCloseTo(page.viewportSize()!.height, 0);
});

test('/embed refuses to be framed by an origin outside ALLOWED_ORIGINS', async ({ page, e2e }) => {
  // The same page from a second host server: another origin, not in ALLOWED_ORIGINS.
  const other = await startHostServer(e2e.serverUrl);
  try {
    const refused = new Promise<string>((resolve) =>
      page.on('console', (m) => {
        if (m.text().includes('frame-ancestors')) resolve(m.text());
      }),
    );
    await page.goto(`${other.url}/iframe-only.html`);
    expect(await refused).toMatch(/violates the following Content Security Policy directive: "frame-ancestors 'self' http:\/\/127\.0\.0\.1:\d+"/);
    // Nothing of classchat rendered in the frame.
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame, 'the iframe exists').toBeTruthy();
    expect(frame!.url()).not.toContain('/embed');
    await expect(page.frameLocator('iframe').locator('classchat-widget')).toHaveCount(0);
  } finally {
    await new Promise((r) => other.server.close(r));
  }
  // The allowed origin, same page: it renders.
  await page.goto(`${e2e.hostUrl}/iframe-only.html`);
  await expect(new WidgetPage(page, e2e, page.frameLocator('iframe')).code).toBeEditable();
});

test("the front page's copy buttons copy each snippet as shown", async ({ page, context, e2e }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: e2e.serverUrl });
  await page.goto(`${e2e.serverUrl}/`);
  for (const id of ['embed-snippet', 'iframe-snippet', 'link-snippet']) {
    const shown = await page.getByTestId(id).textContent();
    const button = page.locator(`button[data-copy="${await page.getByTestId(id).getAttribute('id')}"]`);
    await button.click();
    await expect(button).toHaveText('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
  }
  // The iframe snippet is pasteable HTML pointing at /embed, named after the class, and no
  // snippet overrides the class's title or the students' language.
  const iframe = await page.getByTestId('iframe-snippet').textContent();
  expect(iframe).toContain(`<iframe src="${e2e.serverUrl}/embed?accent=`);
  expect(iframe).toContain('title="Biology helper"');
  for (const id of ['embed-snippet', 'iframe-snippet', 'link-snippet']) {
    const text = (await page.getByTestId(id).textContent()) ?? '';
    expect(text).not.toMatch(/data-title|data-lang|[?&;]title=|lang=/);
  }
});

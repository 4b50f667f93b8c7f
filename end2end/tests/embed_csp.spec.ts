// Host pages with a strict Content-Security-Policy (host/serve.js POLICIES), on another
// origin than classchat. Without 'wasm-unsafe-eval' the loader must keep its bubble and
// run the widget in an iframe of classchat's /embed; with it, the widget runs inline as on
// any page. Neither may trip the policy beyond the one probe that chose the fallback.
import { test, expect, WidgetPage } from './fixtures/widget_page';

declare global {
  interface Window {
    __csp: { directive: string; blocked: string; source: string }[];
  }
}

/** Console lines about the policy, from the page and its frames. */
function cspConsole(page: import('@playwright/test').Page): string[] {
  const lines: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) lines.push(m.text());
  });
  return lines;
}

/** Records every policy violation in every frame (the host page and classchat's /embed)
 *  as `window.__csp`, from before any of their scripts run. */
async function recordViolations(page: import('@playwright/test').Page) {
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile });
    });
  });
}

/** The classchat paths the page requested, in order. */
function classchatRequests(page: import('@playwright/test').Page, serverUrl: string): string[] {
  const paths: string[] = [];
  page.on('request', (r) => {
    if (r.url().startsWith(serverUrl + '/')) paths.push(new URL(r.url()).pathname);
  });
  return paths;
}

test('no WebAssembly, no inline style: styled bubble, the widget works through the /embed iframe', async ({ page, e2e, upstream }) => {
  const violations = cspConsole(page);
  await recordViolations(page);
  const requests = classchatRequests(page, e2e.serverUrl);
  const outer = new WidgetPage(page, e2e);
  await outer.goto('/csp-strict.html');
  // Styled although style-src forbids <style>: the loader's sheet is a constructed one.
  await expect(outer.bubble).toHaveCSS('position', 'fixed');
  await expect(outer.bubble).toHaveCSS('background-color', 'rgb(124, 58, 237)');

  await outer.open();
  const frame = outer.panel.locator('iframe');
  await expect(frame).toHaveAttribute('src', new RegExp(`^${e2e.serverUrl}/embed\\?.*frame=1`));
  // The frame fills the panel, which sits where the inline panel would.
  const [panelBox, frameBox] = [await outer.panel.boundingBox(), await frame.boundingBox()];
  expect(frameBox!.width).toBeCloseTo(panelBox!.width, 0);
  expect(frameBox!.height).toBeCloseTo(panelBox!.height, 0);
  expect(panelBox!.x + panelBox!.width).toBeGreaterThan(page.viewportSize()!.width - 40);

  const w = new WidgetPage(page, e2e, page.frameLocator('classchat-widget iframe'));
  await expect(w.title).toHaveText('Biology helper');
  await w.signIn(e2e.accessCode, 'Ada');
  await expect(w.input).toBeEditable();
  await upstream.setReply('Mitochondria make ATP for the cell.');
  await w.sendMessage('What do mitochondria do?');
  await expect(w.msgs('user').last()).toHaveText('What do mitochondria do?');
  await expect(w.lastReply()).toHaveText('Mitochondria make ATP for the cell.');
  await w.waitForReplyDone();

  // Escape inside the frame closes the host's panel and gives the bubble focus back.
  await w.input.press('Escape');
  await expect(outer.panel).toBeHidden();
  await expect(outer.bubble).toHaveAttribute('aria-expanded', 'false');
  await expect(outer.bubble).toBeFocused();
  // Reopening shows the same frame, still signed in, with the field focused.
  await outer.bubble.click();
  await expect(outer.panel).toBeVisible();
  await expect(w.input).toBeFocused();
  await expect(w.lastReply()).toHaveText('Mitochondria make ATP for the cell.');
  // The close button in the frame closes it too.
  await w.close.click();
  await expect(outer.panel).toBeHidden();

  // One violation: the probe in widget.js that chose the fallback. None in the frame.
  const recorded = await page.evaluate(() => window.__csp);
  expect(recorded, JSON.stringify(recorded)).toHaveLength(1);
  expect(recorded[0].directive).toBe('script-src');
  expect(recorded[0].blocked).toMatch(/eval/);
  expect(recorded[0].source).toContain('/widget.js');
  const embed = page.frames().find((f) => f.url().startsWith(`${e2e.serverUrl}/embed`))!;
  expect(await embed.evaluate(() => window.__csp)).toEqual([]);
  // Chromium prints no console line for the probe; anything printed would be another.
  expect(violations, violations.join('\n')).toEqual([]);
  // The frame loads the same glue and wasm; its own extras are the page and embed.js.
  const glue = requests.filter((p) => /^\/widget\/classchat-widget-\w+\.js$/.test(p));
  const wasm = requests.filter((p) => p.endsWith('_bg.wasm'));
  expect(glue).toHaveLength(1);
  expect(wasm).toHaveLength(1);
  expect(requests.filter((p) => !glue.includes(p) && !wasm.includes(p)).sort()).toEqual(
    ['/api/v1/chat', '/api/v1/session', '/embed', '/widget.js', '/widget/embed.js'].sort(),
  );
});

test('WebAssembly allowed, inline style not: the widget runs inline in the shadow root, styled', async ({ page, e2e }) => {
  const violations = cspConsole(page);
  await recordViolations(page);
  const w = new WidgetPage(page, e2e);
  await w.goto('/csp-wasm.html');
  await w.open();
  await expect(w.code).toBeEditable();
  await expect(w.panel.locator('iframe')).toHaveCount(0);
  // The widget's own stylesheet applies (adopted, not a <style> element).
  await expect(w.loginSubmit).toHaveCSS('cursor', 'pointer');
  await expect(w.panel).toHaveCSS('position', 'fixed');
  await w.signIn(e2e.accessCode, 'Ada');
  await expect(w.input).toBeEditable();
  expect(await page.evaluate(() => window.__csp)).toEqual([]);
  expect(violations, violations.join('\n')).toEqual([]);
});

test('glue import refused (only widget.js allowed): the loader falls back to the /embed iframe', async ({ page, e2e }) => {
  await recordViolations(page);
  const outer = new WidgetPage(page, e2e);
  await outer.goto('/csp-loader-only.html');
  await outer.open();
  await expect(outer.panel.locator('iframe')).toHaveCount(1);
  const w = new WidgetPage(page, e2e, page.frameLocator('classchat-widget iframe'));
  await w.signIn(e2e.accessCode, 'Ada');
  await expect(w.input).toBeEditable();
  // The one refusal is the glue import that chose the fallback.
  const recorded = await page.evaluate(() => window.__csp);
  expect(recorded, JSON.stringify(recorded)).toHaveLength(1);
  expect(recorded[0].blocked).toMatch(/\/widget\/classchat-widget-\w+\.js$/);
});

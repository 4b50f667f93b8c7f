// The host page pays almost nothing until the bubble is opened, and the widget's styles
// and a hostile host page's styles cannot touch each other.
import { test, expect } from './fixtures/widget_page';

/** Glue JS or wasm under /widget/ (the loader itself is /widget.js, outside it). */
const WIDGET_ASSET = /\/widget\/[^?#]+\.(wasm|js)(\?|#|$)/;

/** What the host's CSS decides about one of its elements (runs in the page). */
const hostStyle = (el: Element) => {
  const s = getComputedStyle(el);
  return { fontSize: s.fontSize, color: s.color, fontFamily: s.fontFamily, display: s.display, background: s.backgroundColor };
};

test('the bubble loads the widget only when clicked, isolated from hostile host CSS', async ({ widget, page, e2e }, testInfo) => {
  expect(new URL(e2e.hostUrl).origin, 'the host page is on another origin').not.toBe(new URL(e2e.serverUrl).origin);

  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));

  await widget.goto();
  await expect(widget.bubble).toHaveAttribute('aria-label', 'Open chat');
  await expect(widget.panel).toBeHidden();
  const bubbleBox = await widget.bubble.boundingBox();
  expect(bubbleBox, 'the bubble has a box').not.toBeNull();
  expect(bubbleBox!.width).toBeGreaterThan(10);
  expect(bubbleBox!.height).toBeGreaterThan(10);

  const hostText = page.locator('#host-text');
  const hostButton = page.locator('#host-button');
  const hostTextBefore = await hostText.evaluate(hostStyle);
  const hostButtonBefore = await hostButton.evaluate(hostStyle);
  expect(hostTextBefore.fontSize, "the host's own CSS applies to its page").toBe('40px');

  // The loader is there; the widget itself is not fetched yet.
  expect(requested.some((u) => u.startsWith(`${e2e.serverUrl}/widget.js`))).toBe(true);
  expect(requested.filter((u) => WIDGET_ASSET.test(u)), 'no glue JS or wasm before the first click').toEqual([]);

  const wasmResponse = page.waitForResponse((r) => /\/widget\/[^?#]+\.wasm(\?|#|$)/.test(r.url()));
  await widget.bubble.click();
  const wasm = await wasmResponse;
  expect(wasm.status()).toBe(200);
  expect(wasm.headers()['content-type']).toMatch(/^application\/wasm/);
  expect(requested.some((u) => /\/widget\/[^?#]+\.js(\?|#|$)/.test(u)), 'the glue JS is fetched on open').toBe(true);

  // The login form is visible and readable despite `* { all: unset; font-size: 40px }`.
  await expect(widget.panel).toBeVisible();
  await expect(widget.login).toBeVisible();
  await expect(widget.code).toBeVisible();
  await expect(widget.code).toBeEditable();
  await expect(widget.loginSubmit).toBeVisible();
  const codeFontSize = await widget.code.evaluate((el) => getComputedStyle(el).fontSize);
  expect(codeFontSize, "the host's font-size does not reach the widget").not.toBe('40px');
  expect(parseFloat(codeFontSize)).toBeGreaterThanOrEqual(12);
  expect(parseFloat(codeFontSize)).toBeLessThanOrEqual(24);
  const submitBg = await widget.loginSubmit.evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(submitBg, "the host's button background does not reach the widget").not.toBe('rgb(255, 0, 0)');

  const viewport = page.viewportSize()!;
  const box = await widget.panel.boundingBox();
  expect(box, 'the panel has a box').not.toBeNull();
  expect(box!.width).toBeGreaterThan(200);
  expect(box!.height).toBeGreaterThan(200);
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.y).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(viewport.width);
  expect(box!.y + box!.height).toBeLessThanOrEqual(viewport.height);

  // The widget's CSS does not leak out onto the host page.
  expect(await hostText.evaluate(hostStyle)).toEqual(hostTextBefore);
  expect(await hostButton.evaluate(hostStyle)).toEqual(hostButtonBefore);
  expect(hostButtonBefore.background).toBe('rgb(255, 0, 0)');

  const shot = testInfo.outputPath('widget-open-on-hostile-page.png');
  await page.screenshot({ path: shot });
  await testInfo.attach('widget open on a hostile host page', { path: shot, contentType: 'image/png' });
});

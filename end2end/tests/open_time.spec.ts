// How long a student waits between clicking the bubble and being able to type the access
// code, with the wasm served from loopback. A measurement (issue 6 asks for <= 300 ms): the
// test asserts only that the form becomes usable; the figures go to
// ../target/bench/widget-open.json for scripts/bench and the README.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, expect, WidgetPage } from './fixtures/widget_page';

const RUNS = 5;

test('clicking the bubble makes the login form interactive (timed)', async ({ widget, page, context }) => {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // A fresh page and an empty HTTP cache each time: the cold first open a student sees.
    await context.clearCookies();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.clearBrowserCache');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await widget.goto();
    await expect(widget.bubble).toBeVisible();
    // Time it inside the page: from the click event to the code field being enabled and
    // focusable, polled every animation frame.
    const ms = await page.evaluate(async () => {
      const host = document.querySelector('classchat-widget')!;
      const root = host.shadowRoot!;
      const bubble = root.querySelector('[data-testid="cc-bubble"]') as HTMLElement;
      const start = performance.now();
      bubble.click();
      for (;;) {
        const code = root.querySelector('[data-testid="cc-code"]') as HTMLInputElement | null;
        if (code && !code.disabled && code.getBoundingClientRect().width > 0) return performance.now() - start;
        if (performance.now() - start > 10_000) return -1;
        await new Promise((r) => requestAnimationFrame(() => r(null)));
      }
    });
    expect(ms, 'the login form became interactive').toBeGreaterThan(0);
    await expect(widget.code).toBeEditable();
    times.push(ms);
  }
  times.sort((a, b) => a - b);
  const result = { runs: RUNS, median_ms: times[Math.floor(RUNS / 2)], min_ms: times[0], max_ms: times[RUNS - 1], all_ms: times };
  console.log(`bubble click -> interactive login form: median ${result.median_ms.toFixed(0)} ms (min ${result.min_ms.toFixed(0)}, max ${result.max_ms.toFixed(0)})`);
  const out = path.resolve(__dirname, '../../target/bench');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'widget-open.json'), JSON.stringify(result, null, 2));
});

// The same figure for the loader's fallback (a host page whose CSP forbids compiling
// WebAssembly): the click is on the host page, the form is in classchat's /embed iframe.
// Both ends read the clock as performance.timeOrigin + performance.now(), so they compare
// across the frame boundary; the frame's side is watched from before its scripts run.
test('through the /embed fallback, clicking the bubble makes the login form interactive (timed)', async ({ widget, page, context }) => {
  await page.addInitScript(() => {
    if (location.pathname !== '/embed') return;
    const w = window as unknown as { __ccReadyAt?: number };
    const tick = () => {
      const code = document.querySelector('classchat-widget')?.shadowRoot?.querySelector('[data-testid="cc-code"]') as HTMLInputElement | null;
      if (code && !code.disabled && code.getBoundingClientRect().width > 0) w.__ccReadyAt = performance.timeOrigin + performance.now();
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await context.clearCookies();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.clearBrowserCache');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await widget.goto('/csp-strict.html');
    const clickAt = await page.evaluate(() => {
      const root = document.querySelector('classchat-widget')!.shadowRoot!;
      const at = performance.timeOrigin + performance.now();
      (root.querySelector('[data-testid="cc-bubble"]') as HTMLElement).click();
      return at;
    });
    const frame = new WidgetPage(page, widget.env, page.frameLocator('classchat-widget iframe'));
    await expect(frame.code).toBeEditable();
    const embed = page.frames().find((f) => new URL(f.url()).pathname === '/embed')!;
    const readyAt = await embed.evaluate(() => (window as unknown as { __ccReadyAt?: number }).__ccReadyAt ?? -1);
    expect(readyAt, 'the frame saw its form become interactive').toBeGreaterThan(clickAt);
    times.push(readyAt - clickAt);
  }
  times.sort((a, b) => a - b);
  const result = { mode: 'iframe-fallback', runs: RUNS, median_ms: times[Math.floor(RUNS / 2)], min_ms: times[0], max_ms: times[RUNS - 1], all_ms: times };
  console.log(`fallback: bubble click -> interactive login form in the /embed frame: median ${result.median_ms.toFixed(0)} ms (min ${result.min_ms.toFixed(0)}, max ${result.max_ms.toFixed(0)})`);
  const out = path.resolve(__dirname, '../../target/bench');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'widget-open-iframe.json'), JSON.stringify(result, null, 2));
});

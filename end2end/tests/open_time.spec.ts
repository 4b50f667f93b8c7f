// How long a student waits between clicking the bubble and being able to type the access
// code, with the wasm served from loopback. A measurement (issue 6 asks for <= 300 ms): the
// test asserts only that the form becomes usable; the figures go to
// ../target/bench/widget-open.json for scripts/bench and the README.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, expect } from './fixtures/widget_page';

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

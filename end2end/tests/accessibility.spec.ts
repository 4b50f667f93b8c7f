// WCAG 2.2 AA: axe-core (npm) scans the open widget in light and dark, and the keyboard,
// screen-reader and motion behaviours axe cannot see are checked by hand: Tab stays in
// the open panel, Escape gives focus back to the bubble, a reply is announced once and
// whole, reduced motion stops everything moving.
import { readFileSync } from 'node:fs';
import type { Frame, Page } from '@playwright/test';

import { test, expect, WidgetPage, type UpstreamControl } from './fixtures/widget_page';

// Hundreds of round trips per test (30 key presses each way, each followed by a look at
// the focus; several axe scans): more than the default 30 s when builds share the cores.
test.describe.configure({ timeout: 90_000 });

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

/** A reply with every block the widget renders. */
const RICH_REPLY = [
  'Cells have **parts**, each with a job.',
  '',
  '- Nucleus',
  '- Mitochondria',
  '',
  'Call `divide()` to split one; read [more about cells](https://example.com/cells).',
  '',
  '```rust',
  'fn main() { println!("cells"); }',
  '```',
  '',
  '| Part | Role |',
  '| --- | --- |',
  '| Nucleus | Keeps the DNA |',
].join('\n');

interface AxeFinding {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe on the widget (its host element: axe follows the open shadow root) with the
 *  WCAG 2.x A/AA rules; returns the serious and critical violations, and which rules
 *  passed (to show the contrast rule really looked at something). */
async function scanWidget(page: Page): Promise<{ bad: AxeFinding[]; passed: string[] }> {
  // Evaluated rather than added as a <script>: /embed's policy allows no inline script.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const axe = (window as any).axe;
    const r = await axe.run('classchat-widget', { runOnly: { type: 'tag', values: tags } });
    return {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      bad: r.violations.filter((v: any) => v.impact === 'serious' || v.impact === 'critical').map((v: any) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        nodes: v.nodes.map((n: any) => `${JSON.stringify(n.target)}: ${n.failureSummary}`),
      })),
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      passed: r.passes.map((p: any) => p.id),
    };
  }, WCAG_TAGS);
}

async function expectNoSeriousViolations(page: Page, what: string) {
  const { bad, passed } = await scanWidget(page);
  const report = bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n');
  expect(bad, `${what}: axe found serious or critical violations:\n${report}`).toEqual([]);
  expect(passed, `${what}: the contrast rule checked nothing`).toContain('color-contrast');
}

/** WCAG relative luminance of any CSS colour the browser understands (lch() included):
 *  painted on a canvas and read back as sRGB. */
async function luminanceOf(page: Page, colors: string[]): Promise<number[]> {
  return page.evaluate((colors) => {
    const c = document.createElement('canvas').getContext('2d', { willReadFrequently: true })!;
    return colors.map((color) => {
      c.clearRect(0, 0, 1, 1);
      c.fillStyle = '#000';
      c.fillStyle = color;
      c.fillRect(0, 0, 1, 1);
      const [r, g, b] = Array.from(c.getImageData(0, 0, 1, 1).data.slice(0, 3)).map((v) => {
        const s = v / 255;
        return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    });
  }, colors);
}

/** Contrast ratio of the text (or icon) colour of `selector` against its own (opaque)
 *  background. */
async function contrastOf(page: Page, selector: string): Promise<number> {
  const [fg, bg] = await page.evaluate((selector) => {
    const el = document.querySelector('classchat-widget')!.shadowRoot!.querySelector(selector)!;
    const s = getComputedStyle(el);
    return [s.color, s.backgroundColor];
  }, selector);
  expect(bg, `${selector} has a background of its own`).not.toMatch(/^rgba\(.*, 0\)$|^transparent$/);
  const [a, b] = await luminanceOf(page, [fg, bg]);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}

/** Focuses `selector` as a keyboard user would see it (after a key press, so
 *  :focus-visible applies) and returns the contrast of its focus ring against the
 *  background of `behind`, where the ring is drawn. */
async function focusRingContrast(page: Page, selector: string, behind: string): Promise<number> {
  await page.keyboard.press('Shift');
  const ring = await page.evaluate(
    ([selector, behind]) => {
      const root = document.querySelector('classchat-widget')!.shadowRoot!;
      const el = root.querySelector<HTMLElement>(selector)!;
      el.focus();
      const s = getComputedStyle(el);
      return {
        visible: el.matches(':focus-visible'),
        style: s.outlineStyle,
        width: parseFloat(s.outlineWidth),
        color: s.outlineColor,
        bg: getComputedStyle(root.querySelector(behind)!).backgroundColor,
      };
    },
    [selector, behind],
  );
  expect(ring.visible, `${selector} shows keyboard focus`).toBe(true);
  expect(ring.style, `${selector} focus ring`).not.toBe('none');
  expect(ring.width, `${selector} focus ring width`).toBeGreaterThanOrEqual(2);
  const [a, b] = await luminanceOf(page, [ring.color, ring.bg]);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}

/** The luminance of the widget's background (`.cc-app`). */
async function appBackground(page: Page): Promise<number> {
  const bg = await page.evaluate(
    () => getComputedStyle(document.querySelector('classchat-widget')!.shadowRoot!.querySelector('.cc-app')!).backgroundColor,
  );
  return (await luminanceOf(page, [bg]))[0];
}

/** Login form, a rich reply and an upstream failure line, each scanned by axe. */
async function scanEveryView(page: Page, widget: WidgetPage, upstream: UpstreamControl, pagePath: string, label: string) {
  await widget.goto(pagePath);
  await widget.open();
  await expect(widget.code).toBeFocused();
  await expectNoSeriousViolations(page, `${label}, login form`);

  await widget.signIn(widget.env.accessCode, 'Ada');
  await expect(widget.input).toBeEditable();
  await upstream.setReply(RICH_REPLY);
  await widget.sendMessage('What are the parts of a cell?');
  await expect(widget.lastReply()).toContainText('Keeps the DNA');
  await widget.waitForReplyDone();
  const reply = widget.lastReply();
  await expect(reply.locator('ul > li')).toHaveCount(2);
  await expect(reply.locator('a')).toHaveCount(1);
  await expect(reply.locator(':not(pre) > code')).toHaveCount(1);
  await expect(reply.locator('pre code')).toHaveCount(1);
  await expect(reply.locator('table')).toHaveCount(1);
  await expectNoSeriousViolations(page, `${label}, chat with a formatted reply`);

  await upstream.setMode({ mode: 'status', status: 503, body: 'error code: 502', content_type: 'text/plain' });
  await widget.sendMessage('And the ribosomes?');
  await expect(widget.chatError).toBeVisible();
  await expect(widget.retry).toBeVisible();
  await expectNoSeriousViolations(page, `${label}, upstream error line`);

  // Text and icons on the accent (header, the student's bubble, the chat bubble) and the
  // primary button: at least 4.5:1, whatever the accent.
  await upstream.setMode({ mode: 'normal' });
  await widget.retry.click();
  await widget.waitForReplyDone();
  for (const sel of ['.cc-header', '.cc-user', '.cc-send', '.cc-bubble']) {
    expect(await contrastOf(page, sel), `${label}: contrast of ${sel}`).toBeGreaterThanOrEqual(4.5);
  }
  // Focus rings: at least 3:1 against what they are drawn on.
  for (const [sel, behind] of [
    ['[data-testid="cc-close"]', '.cc-header'],
    ['[data-testid="cc-messages"]', '.cc-messages'],
    ['[data-testid="cc-input"]', '.cc-composer'],
    ['[data-testid="cc-send"]', '.cc-composer'],
  ]) {
    expect(await focusRingContrast(page, sel, behind), `${label}: focus ring of ${sel}`).toBeGreaterThanOrEqual(3);
  }
}

test.describe('axe finds no serious or critical WCAG 2.2 A/AA violation', () => {
  test('light colour scheme', async ({ page, widget, upstream }) => {
    await page.emulateMedia({ colorScheme: 'light' });
    await scanEveryView(page, widget, upstream, '/', 'light');
    expect(await appBackground(page)).toBeGreaterThan(0.9);
  });

  test('dark colour scheme', async ({ page, widget, upstream }) => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await scanEveryView(page, widget, upstream, '/', 'dark');
    expect(await appBackground(page)).toBeLessThan(0.05);
  });

  test('data-theme="dark" with a light accent on a light-scheme page', async ({ page, widget, upstream }) => {
    await page.emulateMedia({ colorScheme: 'light' });
    await scanEveryView(page, widget, upstream, '/theme-dark.html', 'data-theme=dark');
    expect(await appBackground(page)).toBeLessThan(0.05);
    // A light accent gets dark text.
    const [title] = await luminanceOf(page, [
      await page.evaluate(
        () => getComputedStyle(document.querySelector('classchat-widget')!.shadowRoot!.querySelector('.cc-title')!).color,
      ),
    ]);
    expect(title).toBeLessThan(0.05);
  });
});

test('data-theme="light" keeps the widget light on a dark-scheme page', async ({ page, widget }) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await widget.goto('/theme-light.html');
  await widget.open();
  await expect(widget.code).toBeFocused();
  expect(await appBackground(page)).toBeGreaterThan(0.9);
  // Without data-title the loader's provisional label is "Chat"; the mounted dialog is
  // named by the title its header shows.
  const title = (await widget.title.textContent())!;
  expect(title).not.toBe('Chat');
  await expect(widget.panel).toHaveAccessibleName(title);
  // And the same page follows the theme when it is not forced (index.html).
  await widget.goto('/');
  await widget.open();
  await expect(widget.code).toBeFocused();
  expect(await appBackground(page)).toBeLessThan(0.05);
});

test('/embed takes ?theme= too, and its dark page passes axe', async ({ page, e2e }) => {
  const w = new WidgetPage(page, e2e);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto(`${e2e.serverUrl}/embed?title=Biology+helper&theme=dark`);
  await expect(w.code).toBeEditable();
  expect(await appBackground(page)).toBeLessThan(0.05);
  // Behind the centred column on a wide screen, the page is dark too.
  const sides = await page.evaluate(() => getComputedStyle(document.querySelector('classchat-widget')!).backgroundColor);
  expect((await luminanceOf(page, [sides]))[0]).toBeLessThan(0.05);
  await expectNoSeriousViolations(page, '/embed?theme=dark');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${e2e.serverUrl}/embed?theme=light`);
  await expect(w.code).toBeEditable();
  expect(await appBackground(page)).toBeGreaterThan(0.9);
});

test("the loader's own load-failure text and Retry button pass axe, light and dark", async ({ page, widget }) => {
  // The wasm cannot be fetched: the loader shows its failure text with a Retry button.
  await page.route('**/*_bg.wasm', (route) => route.abort());
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await widget.goto();
    await widget.open();
    const retry = widget.panel.getByRole('button', { name: 'Retry' });
    await expect(retry).toBeFocused();
    await expect(widget.panel.getByRole('alert')).toContainText('Could not load the chat.');
    await expectNoSeriousViolations(page, `load failure, ${colorScheme}`);
    const bg = await page.evaluate(
      () => getComputedStyle(document.querySelector('classchat-widget')!.shadowRoot!.querySelector('.cc-panel')!).backgroundColor,
    );
    const [lum] = await luminanceOf(page, [bg]);
    expect(colorScheme === 'dark' ? lum < 0.05 : lum > 0.9, `${colorScheme} panel, luminance ${lum}`).toBe(true);
  }
});

/** Where focus really is: `in panel <element>`, or what holds it outside the panel. */
function deepFocus(page: Page | Frame): Promise<string> {
  return page.evaluate(() => {
    const host = document.querySelector('classchat-widget');
    const name = (el: Element | null) =>
      el ? `${el.tagName.toLowerCase()}${el.getAttribute('data-testid') ? `[${el.getAttribute('data-testid')}]` : ''}` : 'nothing';
    if (!host || document.activeElement !== host) return `outside: ${name(document.activeElement)}`;
    const el = host.shadowRoot!.activeElement;
    const panel = host.shadowRoot!.querySelector('[data-testid="cc-panel"]')!;
    return el && panel.contains(el) ? `in panel ${name(el)}` : `outside the panel: ${name(el)}`;
  });
}

/** Presses `key` 30 times; after each, focus must be in the panel. Returns where it went. */
async function tabAround(page: Page, key: 'Tab' | 'Shift+Tab', where: () => Promise<string>): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press(key);
    const at = await where();
    expect(at, `${key} #${i + 1}`).toMatch(/^in panel /);
    seen.push(at);
  }
  return seen;
}

test('Tab and Shift+Tab never leave the open panel; Escape closes it and focuses the bubble', async ({ page, widget, upstream }) => {
  await widget.goto();
  await widget.bubble.focus();
  await page.keyboard.press('Enter');
  await expect(widget.panel).toBeVisible();
  await expect(widget.panel).toHaveAttribute('role', 'dialog');
  await expect(widget.panel).toHaveAttribute('aria-modal', 'true');
  // Named by the header's title.
  await expect(widget.panel).toHaveAccessibleName('Biology helper');
  await expect(widget.code).toBeFocused();

  // Login form: code, name, submit, close, and round again.
  let seen = await tabAround(page, 'Tab', () => deepFocus(page));
  expect(new Set(seen)).toEqual(
    new Set(['in panel input[cc-code]', 'in panel input[cc-name]', 'in panel button[cc-login-submit]', 'in panel button[cc-close]']),
  );
  await tabAround(page, 'Shift+Tab', () => deepFocus(page));

  // Signed in, with a reply holding a link: every control is reached, by keyboard alone.
  await widget.code.fill(widget.env.accessCode);
  await page.keyboard.press('Enter');
  await expect(widget.input).toBeFocused();
  await upstream.setReply('See [the cell page](https://example.com/cells).');
  await page.keyboard.type('Where can I read more?');
  await page.keyboard.press('Enter');
  await widget.waitForReplyDone();
  for (const key of ['Tab', 'Shift+Tab'] as const) {
    seen = await tabAround(page, key, () => deepFocus(page));
    for (const control of ['button[cc-new]', 'button[cc-signout]', 'button[cc-close]', 'div[cc-messages]', 'a', 'textarea[cc-input]', 'button[cc-send]']) {
      expect(seen, `${key} reaches ${control}`).toContain(`in panel ${control}`);
    }
  }

  // A click on plain text, then Shift+Tab: still inside.
  await widget.title.click();
  await page.keyboard.press('Shift+Tab');
  expect(await deepFocus(page)).toMatch(/^in panel /);

  await page.keyboard.press('Escape');
  await expect(widget.panel).toBeHidden();
  await expect(widget.bubble).toBeFocused();
  // Reopened by keyboard: focus goes to the field again.
  await page.keyboard.press('Enter');
  await expect(widget.input).toBeFocused();
});

test('in the /embed fallback frame, Tab stays in the panel too, and Escape focuses the bubble', async ({ page, e2e }) => {
  const outer = new WidgetPage(page, e2e);
  await outer.goto('/csp-strict.html');
  await outer.open();
  const w = new WidgetPage(page, e2e, page.frameLocator('classchat-widget iframe'));
  await expect(w.code).toBeFocused();
  const embed = page.frames().find((f) => f.url().startsWith(`${e2e.serverUrl}/embed`))!;
  // Focus is in the frame, and in the frame it is in its panel.
  const where = async () => {
    const top = await page.evaluate(() => {
      const host = document.querySelector('classchat-widget');
      return document.activeElement === host ? host!.shadowRoot!.activeElement?.tagName : document.activeElement?.tagName;
    });
    return top === 'IFRAME' ? deepFocus(embed) : `outside the frame: ${top}`;
  };
  const seen = await tabAround(page, 'Tab', where);
  expect(seen).toContain('in panel button[cc-close]');
  expect(seen).toContain('in panel input[cc-code]');
  await tabAround(page, 'Shift+Tab', where);
  await page.keyboard.press('Escape');
  await expect(outer.panel).toBeHidden();
  await expect(outer.bubble).toBeFocused();
});

test('a reply is announced once, complete, never token by token', async ({ page, widget, upstream }) => {
  await widget.openSignedIn();
  // The list is not a live region; the announcer is.
  await expect(widget.messages).not.toHaveAttribute('aria-live', /./);
  await expect(widget.messages).not.toHaveAttribute('role', /^(log|status|alert|marquee|timer)$/);
  const region = widget.host.getByTestId('cc-announce');
  await expect(region).toHaveAttribute('role', 'status');
  await expect(region).toHaveText('');

  // Every text the region takes, recorded as it changes.
  await page.evaluate(() => {
    const el = document.querySelector('classchat-widget')!.shadowRoot!.querySelector('[data-testid="cc-announce"]')!;
    const w = window as unknown as { __announced: string[] };
    w.__announced = [];
    new MutationObserver(() => w.__announced.push((el.textContent ?? '').trim())).observe(el, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  const announced = () => page.evaluate(() => (window as unknown as { __announced: string[] }).__announced.filter((t) => t !== ''));

  // Slow: 12 pieces, 250 ms apart.
  await upstream.setReply('The nucleus keeps the **DNA** of the cell, and the mitochondria make its energy.');
  await upstream.setChunks(12);
  await upstream.setChunkDelay(250);
  await widget.sendMessage('What does the nucleus do?');
  // Part of the reply is on screen, the region still silent.
  await expect(widget.stop).toBeVisible();
  await expect(widget.lastReply()).toContainText('nucleus');
  await expect(widget.lastReply()).not.toContainText('energy');
  expect(await announced()).toEqual([]);
  await expect(region).toHaveText('');
  await widget.waitForReplyDone();

  const whole = 'The nucleus keeps the DNA of the cell, and the mitochondria make its energy.';
  await expect(region).toHaveText(whole);
  await expect(widget.lastReply()).toHaveText(whole);
  expect(await announced()).toEqual([whole]);

  // Signing out (the next student on a shared PC) empties it with everything else.
  await widget.signOut.click();
  await expect(widget.login).toBeVisible();
  await expect(region).toHaveText('');
});

test('reduced motion: the bubble and the typing dots do not move', async ({ page, widget, upstream }) => {
  const motion = () =>
    page.evaluate(() => {
      const root = document.querySelector('classchat-widget')!.shadowRoot!;
      const dot = root.querySelector('.cc-dot');
      return {
        bubble: getComputedStyle(root.querySelector('.cc-bubble')!).transitionDuration,
        dots: dot ? getComputedStyle(dot).animationName : 'no dots',
      };
    });
  await widget.openSignedIn();
  // The first words take 20 s: the typing dots show meanwhile.
  await upstream.setChunkDelay(20_000);
  await widget.sendMessage('Hello?');
  await expect(widget.messages.locator('.cc-dot')).toHaveCount(3);
  expect(await motion()).toEqual({ bubble: '0.15s', dots: 'cc-blink' });
  await page.emulateMedia({ reducedMotion: 'reduce' });
  expect(await motion()).toEqual({ bubble: '0s', dots: 'none' });
  await widget.stop.click();
});

// A fenced code block in a reply has a header with its language and a Copy button that
// puts exactly the code on the clipboard; long lines scroll inside the block, not the bubble.
import { test, expect } from './fixtures/widget_page';

const CODE = 'def area(r):\n    return 3.14159 * r ** 2  # <b>not html</b>\n\nprint(area(2))';
const LONG = `x = "${'a'.repeat(400)}"`;

test('a code block shows its language, copies its code, and scrolls long lines inside itself', async ({ widget, upstream, page, context, e2e }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: e2e.hostUrl });
  await upstream.setReply(['Here it is:', '', '```python', CODE, '```', '', '```', LONG, '```'].join('\n'));
  await widget.openSignedIn();
  await widget.sendMessage('Write a function');
  await widget.waitForReplyDone();
  const reply = widget.lastReply();

  const blocks = reply.locator('.cc-codeblock');
  await expect(blocks).toHaveCount(2);
  const first = blocks.nth(0);
  await expect(first.locator('span').first()).toHaveText('python');
  await expect(first.locator('pre code')).toHaveText(CODE);

  const copy = first.getByRole('button', { name: 'Copy code' });
  await expect(copy).toBeVisible();
  await copy.click();
  await expect(first.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(CODE);
  // The label comes back.
  await expect(first.getByRole('button', { name: 'Copy code' })).toBeVisible({ timeout: 5_000 });

  // Keyboard: the button and the scrollable code are reachable with Tab.
  await copy.focus();
  await page.keyboard.press('Tab');
  await expect(first.locator('pre')).toBeFocused();

  // The long line scrolls inside its block; the bubble does not grow past the list.
  const second = blocks.nth(1);
  await expect(second.locator('span').first()).toHaveText('');
  await second.getByRole('button', { name: 'Copy code' }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(LONG);
  const pre = second.locator('pre');
  const sizes = await pre.evaluate((el) => {
    const bubble = el.closest('[data-testid="cc-msg"]')!;
    const list = el.closest('[data-testid="cc-messages"]')!;
    return {
      scroll: el.scrollWidth,
      client: el.clientWidth,
      bubble: bubble.getBoundingClientRect().width,
      bubbleOverflow: bubble.scrollWidth - bubble.clientWidth,
      list: list.clientWidth,
    };
  });
  expect(sizes.scroll).toBeGreaterThan(sizes.client);
  expect(sizes.bubbleOverflow).toBe(0);
  expect(sizes.bubble).toBeLessThan(sizes.list);
  await expect(pre).toHaveAttribute('tabindex', '0');
  await expect(pre).toHaveAttribute('aria-label', 'code');
});

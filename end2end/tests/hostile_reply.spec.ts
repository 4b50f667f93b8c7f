// A reply built to break the renderer (10,000 '>' or lists nested thousands deep) renders
// with bounded nesting, without a crash or panic, and the widget keeps working.
import { test, expect, type WidgetPage } from './fixtures/widget_page';

/** The deepest chain of `tag` elements inside the newest reply. */
async function nesting(widget: WidgetPage, selector: string): Promise<number> {
  return widget.lastReply().evaluate((root, sel) => {
    let deepest = 0;
    for (const el of Array.from(root.querySelectorAll(sel))) {
      let d = 0;
      for (let e: Element | null = el; e && e !== root; e = e.parentElement) if (e.matches(sel)) d++;
      deepest = Math.max(deepest, d);
    }
    return deepest;
  }, selector);
}

const HOSTILE: { name: string; reply: string; selector: string; tail: string }[] = [
  { name: "10,000 '>'", reply: '>'.repeat(10_000), selector: 'blockquote', tail: '>>>>' },
  { name: "10,000 '> ' then text", reply: `${'> '.repeat(10_000)}the bottom`, selector: 'blockquote', tail: 'the bottom' },
  { name: '10,000 nested list markers', reply: `${'- '.repeat(10_000)}deepest item`, selector: 'ul', tail: 'deepest item' },
  {
    name: 'a list indented 400 levels deep',
    reply: Array.from({ length: 400 }, (_, i) => `${'  '.repeat(i)}- level ${i}`).join('\n'),
    selector: 'ul',
    tail: 'level 399',
  },
];

test('hostile nesting renders bounded, without a crash, and the chat keeps working', async ({ widget, upstream, page }) => {
  test.setTimeout(60_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /panicked|RuntimeError|unreachable/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await widget.openSignedIn();

  for (const h of HOSTILE) {
    // Replies over 8,000 characters cannot be sent back upstream: one conversation each.
    await widget.newConversation.click();
    await upstream.setReply(h.reply);
    await widget.sendMessage(`Show me ${h.name}`);
    await widget.waitForReplyDone();
    await expect(widget.lastReply(), h.name).toContainText(h.tail);
    const depth = await nesting(widget, h.selector);
    expect(depth, `${h.name}: nesting is bounded`).toBeGreaterThan(1);
    expect(depth, `${h.name}: nesting is bounded`).toBeLessThanOrEqual(8);
    // The page still answers: a frame is painted promptly.
    const frameMs = await page.evaluate(
      () => new Promise<number>((r) => { const t = performance.now(); requestAnimationFrame(() => r(performance.now() - t)); }),
    );
    expect(frameMs, `${h.name}: the page paints again`).toBeLessThan(1_000);
  }

  // Still a working chat.
  await widget.newConversation.click();
  await upstream.setReply(null);
  await widget.sendMessage('Are you still there?');
  await expect(widget.lastReply()).toHaveText('You said: Are you still there?');
  expect(problems, 'no crash, panic or error in the console').toEqual([]);
});

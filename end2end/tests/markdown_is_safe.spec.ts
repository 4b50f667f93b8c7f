// Assistant replies are Markdown, rendered safely: no raw HTML, no script links.
import { test, expect } from './fixtures/widget_page';

const REPLY = [
  '# Cell parts',
  '',
  '- Nucleus',
  '- Mitochondria',
  '',
  'This is **important** and `inline code`.',
  '',
  '```rust',
  'fn main() { println!("cells"); }',
  '```',
  '',
  '| Part | Role |',
  '| --- | --- |',
  '| Nucleus | Keeps the DNA |',
  '',
  '[Safe link](https://example.com/cells) and [bad link](javascript:window.__pwned=3)',
  '',
  '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">',
].join('\n');

test('a Markdown reply renders its structure and nothing executable', async ({ widget, upstream, page }) => {
  await upstream.setReply(REPLY);
  await widget.openSignedIn();
  await widget.sendMessage('Show me the parts of a cell');
  const reply = widget.lastReply();
  await expect(reply).toContainText('Keeps the DNA');
  await widget.waitForReplyDone();

  await expect(reply.locator('h1, h2, h3, h4, h5, h6').filter({ hasText: 'Cell parts' })).toHaveCount(1);
  await expect(reply.locator('ul > li')).toHaveText(['Nucleus', 'Mitochondria']);
  await expect(reply.locator('strong')).toHaveText('important');
  await expect(reply.locator(':not(pre) > code')).toHaveText('inline code');
  await expect(reply.locator('pre code')).toContainText('fn main() { println!("cells"); }');
  await expect(reply.locator('table th')).toHaveText(['Part', 'Role']);
  await expect(reply.locator('table td')).toHaveText(['Nucleus', 'Keeps the DNA']);

  const safe = reply.locator('a', { hasText: 'Safe link' });
  await expect(safe).toHaveAttribute('href', 'https://example.com/cells');
  await expect(safe).toHaveAttribute('target', '_blank');
  await expect(safe).toHaveAttribute('rel', /\bnoopener\b/);
  await expect(safe).toHaveAttribute('rel', /\bnoreferrer\b/);

  await expect(reply).toContainText('bad link');
  await expect(reply.locator('a', { hasText: 'bad link' })).toHaveCount(0);
  await expect(widget.host.locator('a[href^="javascript:" i]')).toHaveCount(0);

  // Raw HTML is shown as text, never turned into elements.
  await expect(reply).toContainText('<script>window.__pwned=1</script>');
  await expect(reply).toContainText('<img src=x onerror="window.__pwned=2">');
  await expect(reply.locator('script, img, iframe, [onerror]')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
});

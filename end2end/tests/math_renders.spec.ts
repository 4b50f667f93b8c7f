// LaTeX in a reply is drawn as MathML: inline ($…$, \(…\)) and display ($$…$$, \[…\]),
// built as DOM nodes in the widget. Money stays text, and a formula with a command the
// converter does not know shows its source instead of broken math.
import { test, expect } from './fixtures/widget_page';

const REPLY = [
  'The area is $\\pi r^2$ and the slope is \\(\\frac{a}{b}\\).',
  '',
  '$$',
  'x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}',
  '$$',
  '',
  '\\[ \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix} \\]',
  '',
  'Tickets cost $5 and $10, between $3 and $4 each.',
  '',
  'Unknown: $\\weirdcommand{x}$ stays as written.',
  '',
  '`$not math$` in code.',
].join('\n');

test('inline and display math render as MathML, money and unknown commands stay text', async ({ widget, upstream }) => {
  await upstream.setReply(REPLY);
  await widget.openSignedIn();
  await widget.sendMessage('Show me some formulas');
  await widget.waitForReplyDone();
  const reply = widget.lastReply();

  const maths = reply.locator('math');
  await expect(maths).toHaveCount(4);
  // Inline: no display attribute; the text is the formula's characters.
  await expect(maths.nth(0)).not.toHaveAttribute('display', /.*/);
  expect(await maths.nth(0).textContent()).toBe('πr2');
  await expect(maths.nth(0)).toHaveAttribute('alttext', '\\pi r^2');
  await expect(maths.nth(0).locator('msup > mi')).toHaveText('r');
  await expect(maths.nth(1)).not.toHaveAttribute('display', /.*/);
  await expect(maths.nth(1).locator('mfrac > mi')).toHaveText(['a', 'b']);
  // Display: a block, with the structure of the formula.
  await expect(maths.nth(2)).toHaveAttribute('display', 'block');
  expect(await maths.nth(2).textContent()).toBe('x=−b±b2−4ac2a');
  await expect(maths.nth(2).locator('mfrac msqrt')).toHaveCount(1);
  await expect(maths.nth(3)).toHaveAttribute('display', 'block');
  await expect(maths.nth(3).locator('mtr')).toHaveCount(2);
  expect(await maths.nth(3).locator('mtd').allTextContents()).toEqual(['1', '2', '3', '4']);
  // Elements in the MathML namespace (so the browser draws them as math), not unknown HTML.
  const ns = await maths.nth(2).evaluate((m) => [m.namespaceURI, m.querySelector('mfrac')?.namespaceURI]);
  expect(ns).toEqual(['http://www.w3.org/1998/Math/MathML', 'http://www.w3.org/1998/Math/MathML']);

  // Money is text.
  await expect(reply.locator('p', { hasText: 'Tickets cost' })).toHaveText('Tickets cost $5 and $10, between $3 and $4 each.');
  await expect(reply.locator('p', { hasText: 'Tickets cost' }).locator('math')).toHaveCount(0);
  // An unknown command: its source, as code, and no math.
  const unknown = reply.locator('p', { hasText: 'Unknown:' });
  await expect(unknown.locator('code')).toHaveText('\\weirdcommand{x}');
  await expect(unknown.locator('math')).toHaveCount(0);
  // Code spans keep their dollars.
  await expect(reply.locator('code', { hasText: '$not math$' })).toHaveCount(1);
});

test('display math still arriving shows its source until the closer comes', async ({ widget, upstream }) => {
  await upstream.setChunks(40);
  await upstream.setChunkDelay(60);
  await upstream.setReply('Here:\n\n$$\n\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}\n$$\n\nDone.');
  await widget.openSignedIn();
  await widget.sendMessage('Add two fractions');
  const reply = widget.lastReply();
  // Before the closing `$$` arrives the source is text; at the end, one display formula.
  await expect(reply).toContainText('$$');
  await widget.waitForReplyDone();
  await expect(reply.locator('math[display="block"]')).toHaveCount(1);
  await expect(reply).not.toContainText('$$');
  expect(await reply.locator('math').textContent()).toBe('12+13=56');
});

test('a formula nested 10,000 braces deep shows its source, without a crash', async ({ widget, upstream, page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /panicked|RuntimeError|unreachable/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const deep = `${'{'.repeat(10_000)}x${'}'.repeat(10_000)}`;
  await upstream.setReply(`Deep: $${deep}$ and then $y^2$.`);
  await widget.openSignedIn();
  await widget.sendMessage('Nest it');
  await widget.waitForReplyDone();
  const reply = widget.lastReply();
  await expect(reply.locator('code')).toHaveText(deep);
  await expect(reply.locator('math')).toHaveCount(1);
  expect(await reply.locator('math').textContent()).toBe('y2');
  expect(problems).toEqual([]);
});

// A student stops a reply mid-way, and recovers from an upstream failure with "retry"
// without retyping anything.
import { test, expect } from './fixtures/widget_page';
import { UPSTREAM_CHUNKS } from './fixtures/processes';

test('stop keeps the partial reply; a failed send keeps the text and retry delivers it', async ({ widget, upstream }) => {
  // Streams slowly on purpose (below): more time than the default on a busy machine.
  test.slow();
  await widget.openSignedIn();

  // --- stop mid-reply ---
  const first = 'Tell me about ribosomes';
  const firstFinal = `You said: ${first}`;
  // One character a chunk, 300 ms apart: about 10 s in which to stop, not a 1.5 s window.
  await upstream.setChunks(firstFinal.length);
  await upstream.setChunkDelay(300);
  const statsBefore = await upstream.stats();
  await widget.sendMessage(first);
  await expect
    .poll(async () => {
      const text = (await widget.lastReply().innerText()).trim();
      return text.length > 0 && text.length < firstFinal.length && firstFinal.startsWith(text);
    }, { message: 'part of the reply arrives', intervals: [50] })
    .toBe(true);
  await widget.stop.click();
  await expect(widget.stop).toBeHidden();
  await expect(widget.send).toBeVisible();
  const partial = (await widget.lastReply().innerText()).trim();
  expect(partial.length).toBeGreaterThan(0);
  expect(firstFinal.startsWith(partial), `"${partial}" is a prefix of the reply`).toBe(true);
  expect(partial.length).toBeLessThan(firstFinal.length);
  await expect(widget.chatError).toBeHidden();
  // Stopping cancels the upstream request too.
  await expect
    .poll(async () => (await upstream.stats()).streams_dropped, { message: 'the upstream stream is cancelled' })
    .toBeGreaterThan(statsBefore.streams_dropped);
  // The partial text stays, and the input is usable.
  await expect(widget.lastReply()).toHaveText(partial);
  await expect(widget.input).toBeEditable();

  // --- upstream failure, then retry ---
  await upstream.setChunks(UPSTREAM_CHUNKS);
  await upstream.setChunkDelay(20);
  await upstream.setMode({ mode: 'status', status: 503, body: 'error code: 502', content_type: 'text/plain' });
  const second = 'What is the cell membrane made of?';
  await widget.sendMessage(second);
  await expect(widget.chatError).toBeVisible();
  await expect(widget.chatError).toHaveAttribute('role', 'alert');
  await expect(widget.chatError).not.toContainText(/error code: 502|upstream_|undefined/);
  // Nothing typed is lost: the message is still in the conversation or in the input.
  await expect
    .poll(async () => {
      const users = await widget.msgs('user').allInnerTexts();
      return users.map((t) => t.trim()).includes(second) || (await widget.input.inputValue()) === second;
    }, { message: 'the failed message is kept' })
    .toBe(true);
  await expect(widget.retry).toBeVisible();

  await upstream.setMode({ mode: 'normal' });
  await widget.retry.click();
  await expect(widget.lastReply()).toHaveText(`You said: ${second}`);
  await expect(widget.chatError).toBeHidden();
  await widget.waitForReplyDone();
  // Sent once, not twice.
  await expect(widget.msgs('user').filter({ hasText: second })).toHaveCount(1);
});

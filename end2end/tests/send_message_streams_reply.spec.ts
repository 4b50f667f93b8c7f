// A student sends a message and watches the reply arrive piece by piece; the conversation
// survives a reload; the server sent Open WebUI one well-formed request.
import { test, expect } from './fixtures/widget_page';

test('a message gets a streamed reply that survives a reload', async ({ widget, upstream, page }) => {
  const question = 'What does a mitochondrion do?';
  const final = `You said: ${question}`;
  // Streams slowly on purpose (below): more time than the default on a busy machine.
  test.slow();
  await widget.openSignedIn();
  // One character a chunk, 150 ms apart: about 6 s of streaming (not 1.5 s), room to see
  // the reply grow on a busy machine (the fixture restores the defaults after the test).
  await upstream.setChunks(final.length);
  await upstream.setChunkDelay(150);
  const before = (await upstream.requests()).length;

  await widget.sendMessage(question);
  await expect(widget.msgs('user').last()).toHaveText(question);
  await expect(widget.input).toHaveValue('');

  // Partial text first: a non-empty prefix of the reply, shorter than the whole.
  const seen: string[] = [];
  await expect
    .poll(
      async () => {
        const text = (await widget.lastReply().innerText()).trim();
        seen.push(text);
        return text.length > 0 && text.length < final.length && final.startsWith(text);
      },
      { message: 'a partial reply is shown while it streams', intervals: [50], timeout: 10_000 },
    )
    .toBe(true);
  await expect(widget.stop).toBeVisible();

  await expect(widget.lastReply()).toHaveText(final);
  await widget.waitForReplyDone();
  expect(seen.length, 'the reply was seen growing').toBeGreaterThan(0);

  // Reload: still signed in, the conversation is still there, nothing is re-sent.
  await page.reload();
  await widget.open();
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveText([question]);
  await expect(widget.lastReply()).toHaveText(final);

  const sent = (await upstream.requests()).slice(before);
  expect(sent, 'exactly one upstream request').toHaveLength(1);
  const body = sent[0].body;
  expect(body).not.toHaveProperty('chat_id');
  expect(body.model).toBe('test-model');
  expect(body.stream).toBe(true);
  const system = (body.messages ?? []).filter((m) => m.role === 'system').map((m) => m.content);
  expect(system).toContainEqual(
    expect.stringMatching(/^The current local date is \d{4}-\d{2}-\d{2} and the current time is \d{2}:\d{2}:\d{2}\.$/),
  );
  expect(body.messages?.at(-1)).toEqual({ role: 'user', content: question });
});

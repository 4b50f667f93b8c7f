// A model that takes a while to load (a cold Ollama model): the server opens the stream at
// once and keeps it alive with heartbeats, so the widget says the assistant is starting up,
// never that a proxy holds the reply, even past the 25 s after which a silent stream counts
// as held. The reply then arrives as usual.
import { test, expect } from './fixtures/widget_page';

// Past the widget's 25 s held-up threshold, and across two 15 s heartbeats.
const FIRST_BYTE_MS = 33_000;

test('a slow first byte shows the starting-up line, not the proxy notice', async ({ widget, upstream }) => {
  test.setTimeout(120_000);
  await widget.openSignedIn();
  await upstream.setMode({ mode: 'slow_start', delay_ms: FIRST_BYTE_MS });
  const question = 'Are you awake?';
  await widget.sendMessage(question);

  const starting = widget.host.getByTestId('cc-starting');
  const held = widget.host.getByTestId('cc-held');
  await expect(starting).toHaveText('The assistant is starting up; the first answer can take a minute.', { timeout: 15_000 });

  // Until the reply is there, the proxy notice never shows (sampled every 250 ms).
  const final = `You said: ${question}`;
  let sawHeld = false;
  await expect
    .poll(
      async () => {
        if (await held.isVisible()) sawHeld = true;
        return (await widget.lastReply().innerText()).trim();
      },
      { message: 'the reply arrives after the slow start', intervals: [250], timeout: FIRST_BYTE_MS + 30_000 },
    )
    .toBe(final);
  expect(sawHeld, 'the "a proxy may be holding the reply" notice showed').toBe(false);
  await widget.waitForReplyDone();
  await expect(starting).toBeHidden();
  await expect(held).toBeHidden();
});

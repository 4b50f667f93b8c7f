// A student sees their limits: a quiet line when few messages are left, and when a limit
// hits, a sentence naming it with a countdown to when sending opens again (the send button
// waits with it), instead of a generic error.
import { test as base, expect, WidgetPage } from './fixtures/widget_page';
import { startClassroom, type Classroom } from './fixtures/classroom';

const test = base.extend<{}, { minuteRoom: Classroom; dayRoom: Classroom }>({
  // Three messages a minute per student: one every 20 s.
  minuteRoom: [
    async ({}, use) => {
      const room = await startClassroom('limits-minute', 'minute-2024', { messagesPerMinute: 3 });
      try {
        await use(room);
      } finally {
        await room.stop();
      }
    },
    { scope: 'worker' },
  ],
  // Three messages a day for the whole class.
  dayRoom: [
    async ({}, use) => {
      const room = await startClassroom('limits-day', 'daily-2024', { extraArgs: ['--daily-message-quota', '3'] });
      try {
        await use(room);
      } finally {
        await room.stop();
      }
    },
    { scope: 'worker' },
  ],
});

/** The whole seconds of the first `m:ss` in `text`. */
function secondsIn(text: string): number {
  const m = text.match(/(\d+):(\d\d)/);
  if (!m) throw new Error(`no countdown in "${text}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

async function send(widget: WidgetPage, text: string) {
  await widget.sendMessage(text);
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toHaveText(`You said: ${text}`);
}

test('the per-minute limit: few-left line, then a sentence and a countdown until sending opens', async ({ page, minuteRoom }) => {
  test.slow(); // waits out most of a 20 s refill
  const widget = new WidgetPage(page, minuteRoom.env);
  const note = widget.chat.getByTestId('cc-limits-note');
  await widget.openSignedIn('Marie');
  await expect(note).toBeHidden();

  await send(widget, 'one');
  await expect(note).toHaveText('2 messages left this minute.');
  await send(widget, 'two');
  await expect(note).toHaveText('1 message left this minute.');
  await send(widget, 'three');
  await expect(note).toHaveText('0 messages left this minute.');

  await widget.sendMessage('four');
  await expect(widget.chatError).toContainText(
    /^You have sent as many messages as you can this minute\. You can send again in 0:\d\d\.$/,
  );
  await expect(note).toBeHidden();
  await expect(widget.send).toBeDisabled();
  await expect(widget.retry).toBeHidden();
  const first = secondsIn(await widget.chatError.innerText());
  expect(first).toBeGreaterThan(0);
  expect(first).toBeLessThanOrEqual(20);
  await expect
    .poll(async () => secondsIn(await widget.chatError.innerText()), { message: 'the countdown goes down' })
    .toBeLessThan(first);

  // At zero the sentence goes, sending opens, and the refused message can be retried.
  await expect(widget.chatError).not.toContainText('You can send again', { timeout: 30_000 });
  await expect(widget.send).toBeEnabled();
  await widget.retry.click();
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toHaveText('You said: four');
  await expect(widget.chatError).toBeHidden();
});

test("the AI service's quota refusal names it and counts down its Retry-After", async ({ page, minuteRoom, upstream }) => {
  const widget = new WidgetPage(page, minuteRoom.env);
  await widget.openSignedIn('Dorothy');
  await upstream.setMode({ mode: 'quota_refusal', retry_after: 4 });
  await widget.sendMessage('Are you there?');
  await expect(widget.chatError).toContainText(
    /^The AI service has reached its usage limit for now\. You can send again in 0:0[1-4]\.$/,
  );
  await expect(widget.send).toBeDisabled();
  const first = secondsIn(await widget.chatError.innerText());
  await expect
    .poll(async () => secondsIn(await widget.chatError.innerText()), { message: 'the countdown goes down' })
    .toBeLessThan(first);
  await upstream.setMode({ mode: 'normal' });
  await expect(widget.chatError).not.toContainText('You can send again');
  await expect(widget.send).toBeEnabled();
  await widget.retry.click();
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toHaveText('You said: Are you there?');
});

test.describe('in the class\'s time zone', () => {
  test.use({ timezoneId: 'Asia/Taipei' });

  test("the daily quota: few-left line, then the time it opens again", async ({ page, dayRoom }) => {
    const widget = new WidgetPage(page, dayRoom.env);
    const note = widget.chat.getByTestId('cc-limits-note');
    await widget.openSignedIn('Chien-Shiung');
    await send(widget, 'a');
    await expect(note).toHaveText('2 messages left today for this class.');
    await send(widget, 'b');
    await expect(note).toHaveText('1 message left today for this class.');
    await send(widget, 'c');
    await expect(note).toHaveText('0 messages left today for this class.');
    await widget.sendMessage('d');
    // The class's day ends at midnight in its time zone (the server's TIMEZONE, Asia/Taipei,
    // which this browser shares); within the last 15 minutes it is counted down instead.
    await expect(widget.chatError).toContainText(
      /^Your class has used today's messages\. You can send again (at 00:00|in \d+:\d\d)\.$/,
    );
    await expect(widget.send).toBeDisabled();
    await expect(note).toBeHidden();
  });
});

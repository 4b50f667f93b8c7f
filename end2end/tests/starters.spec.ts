// A teacher set conversation starters: a student sees them on an empty chat, clicks one,
// and it is sent as their message; they are gone once the conversation has begun.
import { test as base, expect, WidgetPage } from './fixtures/widget_page';
import { startClassroom, type Classroom } from './fixtures/classroom';

const STARTERS = ['What is a cell?', 'Quiz me on mitosis', 'Explain osmosis like I am 10'];

const test = base.extend<{}, { classroom: Classroom }>({
  classroom: [
    async ({}, use) => {
      const room = await startClassroom('starters', 'starter-2024', {
        extraArgs: ['--starters', STARTERS.join(' | '), '--greeting', 'Hi! Pick a question or ask your own.'],
      });
      try {
        await use(room);
      } finally {
        await room.stop();
      }
    },
    { scope: 'worker' },
  ],
});

test('starters show on an empty chat, send when clicked, and are gone after', async ({ page, classroom, upstream }) => {
  const widget = new WidgetPage(page, classroom.env);
  await widget.openSignedIn('Rosalind');
  const starters = widget.messages.getByTestId('cc-starter');
  await expect(starters).toHaveText(STARTERS);
  // Below the greeting, with nothing sent yet.
  await expect(widget.msgs('assistant')).toHaveText(['Hi! Pick a question or ask your own.']);
  await expect(widget.msgs('user')).toHaveCount(0);

  await starters.nth(1).click();
  await expect(widget.msgs('user')).toHaveText(['Quiz me on mitosis']);
  await expect(starters).toHaveCount(0);
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toHaveText('You said: Quiz me on mitosis');
  const sent = (await upstream.requests()).at(-1)?.body.messages?.at(-1);
  expect(sent).toEqual({ role: 'user', content: 'Quiz me on mitosis' });
  // The draft was not touched and the starters stay away for the rest of the conversation.
  await expect(widget.input).toHaveValue('');
  await widget.sendMessage('And meiosis?');
  await widget.waitForReplyDone();
  await expect(starters).toHaveCount(0);

  // A new conversation offers them again.
  await widget.newConversation.click();
  await expect(starters).toHaveText(STARTERS);
});

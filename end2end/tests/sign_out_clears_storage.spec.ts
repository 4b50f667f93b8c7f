// A shared lab PC: one student signs out and the next signs in with the same class code.
// Sign-out leaves nothing of the first student behind: no token, conversation or draft in
// the page's storage or on screen.
import { test, expect } from './fixtures/widget_page';

const SECRET = 'My private question about mitosis';

test('signing out removes every stored key and the next sign-in shows an empty chat', async ({ widget, page, e2e }) => {
  await widget.openSignedIn('Ada');
  await widget.sendMessage(SECRET);
  await expect(widget.lastReply()).toHaveText(`You said: ${SECRET}`);
  await widget.waitForReplyDone();
  const prefix = `classchat:v1:${e2e.serverUrl}:`;
  await expect
    .poll(() => widget.storedKeys(), { message: 'the session and the conversation are stored' })
    .toEqual(expect.arrayContaining([`${prefix}session`, expect.stringMatching(/:conversation$/)]));
  await widget.input.fill('a half-typed draft');

  // The sign-out control is labelled and reachable with the keyboard.
  await expect(widget.signOut).toHaveAccessibleName(/sign out/i);
  await widget.newConversation.focus();
  await page.keyboard.press('Tab');
  await expect(widget.signOut).toBeFocused();
  await page.keyboard.press('Enter');

  await expect(widget.login).toBeVisible();
  await expect(widget.chat).toBeHidden();
  await expect(widget.code).toHaveValue('');
  expect(await widget.storedKeys(), 'no classchat key remains after sign-out').toEqual([]);

  // The next student, same PC, same code.
  await widget.signIn(e2e.accessCode, 'Bo');
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveCount(0);
  await expect(widget.messages).not.toContainText('mitosis');
  await expect(widget.input).toHaveValue('');

  // Nor does a reload bring anything back.
  await page.reload();
  await widget.open();
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveCount(0);
  await expect(widget.messages).not.toContainText('mitosis');
});

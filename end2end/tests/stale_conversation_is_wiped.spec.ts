// A conversation belongs to the session it was written under: one stored under another
// session (the previous student's, on a shared PC) or older than its session's maximum age
// is removed when the widget loads, before anything renders.
import { test, expect, type WidgetPage } from './fixtures/widget_page';

const QUESTION = 'What do chloroplasts do?';

/** Signs in, chats once, and returns this server's stored session and conversation keys. */
async function chatOnce(widget: WidgetPage): Promise<{ sessionKey: string; conversationKey: string }> {
  await widget.openSignedIn();
  await widget.sendMessage(QUESTION);
  await expect(widget.lastReply()).toHaveText(`You said: ${QUESTION}`);
  await widget.waitForReplyDone();
  const prefix = `classchat:v1:${widget.env.serverUrl}:`;
  let conversationKey = '';
  await expect
    .poll(async () => {
      conversationKey = (await widget.storedKeys()).find((k) => k.startsWith(prefix) && k.endsWith(':conversation')) ?? '';
      return conversationKey;
    })
    .not.toBe('');
  return { sessionKey: `${prefix}session`, conversationKey };
}

/** Rewrites one field of a stored JSON record. */
async function setField(widget: WidgetPage, key: string, field: string, value: number) {
  await widget.page.evaluate(
    ([k, f, v]) => {
      const record = JSON.parse(window.localStorage.getItem(k as string)!);
      record[f as string] = v;
      window.localStorage.setItem(k as string, JSON.stringify(record));
    },
    [key, field, value] as const,
  );
}

async function stored(widget: WidgetPage, key: string): Promise<string | null> {
  return widget.page.evaluate((k) => window.localStorage.getItem(k), key);
}

test("a conversation stored under another session is removed and not shown", async ({ widget, page }) => {
  const { conversationKey } = await chatOnce(widget);
  // Under its own session it survives a reload.
  await page.reload();
  await widget.open();
  await expect(widget.msgs('user')).toHaveText([QUESTION]);

  // Written under a session that ended at another time: another student's.
  const record = JSON.parse((await stored(widget, conversationKey))!);
  await setField(widget, conversationKey, 'session_expires_at', record.session_expires_at - 60);
  await page.reload();
  await widget.open();
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveCount(0);
  await expect(widget.messages).not.toContainText('chloroplasts');
  expect(await stored(widget, conversationKey), 'the foreign conversation is removed').toBeNull();
});

test('a conversation older than its session\'s maximum age is removed on load', async ({ widget, page }) => {
  const { sessionKey, conversationKey } = await chatOnce(widget);
  // The session's maximum age has passed (as after a weekend with the page closed).
  const past = Math.floor(Date.now() / 1000) - 3600;
  await setField(widget, sessionKey, 'session_expires_at', past);
  await setField(widget, conversationKey, 'session_expires_at', past);
  await page.reload();
  await widget.open();
  await expect(widget.login).toBeVisible();
  expect(await widget.storedKeys(), 'nothing of the ended session is left').toEqual([]);

  // The next sign-in starts empty.
  await widget.signIn(widget.env.accessCode, 'Bo');
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveCount(0);
  await expect(widget.messages).not.toContainText('chloroplasts');
});

test('a session reaching its maximum age with the widget open takes its conversation with it', async ({ widget, page }) => {
  const { sessionKey, conversationKey } = await chatOnce(widget);
  // The last token of the session: it cannot be refreshed, and the session ends with it.
  const ends = Math.floor(Date.now() / 1000) + 30;
  await setField(widget, sessionKey, 'expires_at', ends);
  await setField(widget, sessionKey, 'session_expires_at', ends);
  await setField(widget, conversationKey, 'session_expires_at', ends);
  await page.clock.install();
  await page.reload();
  await widget.open();
  await expect(widget.msgs('user')).toHaveText([QUESTION]);

  // The student walks away; the session's maximum age passes.
  await page.clock.fastForward('00:45');
  await expect(widget.login).toBeVisible();
  await expect(widget.host.getByTestId('cc-login-notice')).toBeVisible();
  expect(await widget.storedKeys(), 'nothing of the ended session is left').toEqual([]);
  await widget.signIn(widget.env.accessCode, 'Bo');
  await expect(widget.chat).toBeVisible();
  await expect(widget.msgs('user')).toHaveCount(0);
});

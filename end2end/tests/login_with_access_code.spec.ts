// A student signs in with the class access code; the sign-in survives a reload and ends
// with "sign out".
import { test, expect } from './fixtures/widget_page';

test('a wrong code is refused, the right one opens the chat until sign-out', async ({ widget, page, e2e }) => {
  await widget.goto();
  await widget.open();

  await widget.signIn('not-the-code', 'Ada');
  await expect(widget.loginError).toBeVisible();
  await expect(widget.loginError).toHaveAttribute('role', 'alert');
  await expect(widget.loginError).toContainText(/access code/i);
  await expect(widget.loginError).not.toContainText(/invalid_code|undefined|null|\{/);
  await expect(widget.chat).toBeHidden();

  await widget.code.fill(e2e.accessCode);
  await widget.loginSubmit.click();
  await expect(widget.chat).toBeVisible();
  await expect(widget.login).toBeHidden();
  await expect(widget.input).toBeEditable();
  await expect(widget.title).toContainText('Biology helper');

  const sessionKey = `classchat:v1:${e2e.serverUrl}:session`;
  const stored = () => page.evaluate((k) => window.localStorage.getItem(k), sessionKey);
  expect(await stored(), `the token is kept in localStorage under ${sessionKey}`).toContain('"token"');

  // A reload keeps the sign-in: the chat opens without the login form.
  await page.reload();
  await expect(widget.bubble).toBeVisible();
  await widget.open();
  await expect(widget.chat).toBeVisible();
  await expect(widget.login).toBeHidden();

  await widget.signOut.click();
  await expect(widget.login).toBeVisible();
  await expect(widget.chat).toBeHidden();
  await expect.poll(stored, { message: 'sign-out forgets the token' }).toBeNull();

  // And stays signed out after a reload.
  await page.reload();
  await widget.open();
  await expect(widget.login).toBeVisible();
});

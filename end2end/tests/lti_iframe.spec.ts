// LTI 1.3 inside an LMS's cross-site iframe, in real Chromium. A tiny LMS runs here in Node
// on http://127.0.0.1 (RSA key and keyset, OpenID configuration and registration endpoint,
// an authentication endpoint that answers with the auto-post form, a Deep Linking return,
// and a course page that frames classchat); classchat runs at http://localhost — another
// site, so its cookies there are third-party (Chromium lets localhost set Secure cookies).
// The administrator registers the LMS by Dynamic Registration, an instructor binds the
// course by Deep Linking, then a learner launches once with LTI Platform Storage (the course
// page answers lti.put_data / lti.get_data; the cookie is withheld) and once with the
// partitioned state cookie alone.
import { test, expect, type Page } from '@playwright/test';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { startClassChat, tempDir, type Server } from './fixtures/processes';

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
const DL = 'https://purl.imsglobal.org/spec/lti-dl/claim/';
const INSTRUCTOR = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor';
const LEARNER = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner';
const CLIENT_ID = 'e2e-lms-client';
const DEPLOYMENT = '1';
const REGISTRATION_TOKEN = 'e2e-registration-token';
const ADMIN_PASSWORD = 'e2e-lti-admin-password';

/** Who the next authentication answers for, and how. */
interface Next {
  sub: string;
  roles: string[];
  deepLinking: boolean;
  /** Echo `lti_storage_target` in the launch form (the platform offers storage). */
  storage: boolean;
}

class Lms {
  url = '';
  next: Next = { sub: 'learner-1', roles: [LEARNER], deepLinking: false, storage: false };
  registrations: Record<string, unknown>[] = [];
  deepLinkResponses: string[] = [];
  launchUrl = '';
  private server?: http.Server;
  private readonly key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

  private sign(claims: Record<string, unknown>): string {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'lms-1' })}.${b64(claims)}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), this.key.privateKey).toString('base64url')}`;
  }

  private idToken(nonce: string): string {
    const now = Math.floor(Date.now() / 1000);
    const n = this.next;
    const claims: Record<string, unknown> = {
      iss: this.url, aud: CLIENT_ID, sub: n.sub, exp: now + 300, iat: now, nonce,
      name: 'Mei Lin',
      [`${LTI}message_type`]: n.deepLinking ? 'LtiDeepLinkingRequest' : 'LtiResourceLinkRequest',
      [`${LTI}version`]: '1.3.0',
      [`${LTI}deployment_id`]: DEPLOYMENT,
      [`${LTI}target_link_uri`]: this.launchUrl,
      [`${LTI}roles`]: n.roles,
      [`${LTI}context`]: { id: 'course-7', title: 'Biology 101' },
      [`${LTI}launch_presentation`]: { document_target: 'iframe', locale: 'en' },
    };
    if (n.deepLinking) {
      claims[`${DL}deep_linking_settings`] = {
        deep_link_return_url: `${this.url}/dl-return`,
        accept_types: ['ltiResourceLink'],
        accept_presentation_document_targets: ['iframe'],
        data: 'e2e-data',
      };
    } else {
      claims[`${LTI}resource_link`] = { id: 'link-1' };
    }
    return this.sign(claims);
  }

  private page(res: http.ServerResponse, body: string) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html><body>${body}</body></html>`);
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', this.url);
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => this.handle(u, req.method ?? 'GET', req.headers, body, res));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  private handle(u: URL, method: string, headers: http.IncomingHttpHeaders, body: string, res: http.ServerResponse) {
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    switch (u.pathname) {
      case '/jwks': {
        const jwk = this.key.publicKey.export({ format: 'jwk' });
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ keys: [{ ...jwk, kid: 'lms-1', alg: 'RS256', use: 'sig' }] }));
        return;
      }
      case '/.well-known/openid-configuration':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          issuer: this.url,
          authorization_endpoint: `${this.url}/auth`,
          registration_endpoint: `${this.url}/register`,
          jwks_uri: `${this.url}/jwks`,
          token_endpoint: `${this.url}/token`,
          'https://purl.imsglobal.org/spec/lti-platform-configuration': { product_family_code: 'e2e', version: '1' },
        }));
        return;
      case '/register': {
        if (method !== 'POST' || headers.authorization !== `Bearer ${REGISTRATION_TOKEN}`) {
          res.writeHead(401).end('bad registration token');
          return;
        }
        const reg = JSON.parse(body);
        this.registrations.push(reg);
        reg.client_id = CLIENT_ID;
        reg['https://purl.imsglobal.org/spec/lti-tool-configuration'].deployment_id = DEPLOYMENT;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reg));
        return;
      }
      case '/auth': {
        const q = u.searchParams;
        if (q.get('client_id') !== CLIENT_ID || q.get('redirect_uri') !== this.launchUrl || !q.get('nonce') || !q.get('state')) {
          res.writeHead(400).end('bad authentication request');
          return;
        }
        const storage = this.next.storage ? '<input type="hidden" name="lti_storage_target" value="_parent">' : '';
        this.page(res,
          `<form method="post" action="${esc(this.launchUrl)}"><input type="hidden" name="id_token" value="${this.idToken(q.get('nonce')!)}">` +
          `<input type="hidden" name="state" value="${esc(q.get('state')!)}">${storage}</form><script>document.forms[0].submit()</script>`);
        return;
      }
      case '/dl-return':
        this.deepLinkResponses.push(new URLSearchParams(body).get('JWT') ?? '');
        this.page(res, '<p id="returned">Back in the course</p>');
        return;
      case '/course': {
        // The course page: frames `src`; with `answer=1` it is the platform's storage frame
        // (lti.put_data / lti.get_data, keyed by the tool's origin); it counts the close.
        const src = u.searchParams.get('src') ?? '';
        const answer = u.searchParams.get('answer') === '1';
        this.page(res, `<h1>Biology 101</h1><iframe name="tool" src="${esc(src)}" width="900" height="650"></iframe><script>
window.puts = 0; window.gets = 0; window.ltiClosed = 0; const stored = {};
addEventListener('message', (e) => {
  const m = e.data || {};
  if (m.subject === 'org.imsglobal.lti.close') { window.ltiClosed++; return; }
  if (!${answer}) return;
  const k = e.origin + ' ' + m.key;
  if (m.subject === 'lti.put_data') {
    window.puts++; stored[k] = m.value;
    e.source.postMessage({ subject: 'lti.put_data.response', message_id: m.message_id, key: m.key, value: m.value }, e.origin);
  } else if (m.subject === 'lti.get_data') {
    window.gets++;
    e.source.postMessage(k in stored
      ? { subject: 'lti.get_data.response', message_id: m.message_id, key: m.key, value: stored[k] }
      : { subject: 'lti.get_data.response', message_id: m.message_id, key: m.key, error: { code: 'not_found', message: 'no such key' } }, e.origin);
  }
});</script>`);
        return;
      }
      default:
        res.writeHead(404).end('not found');
    }
  }
}

const lms = new Lms();
let server: Server;

/** classchat's login URL as the LMS opens it in the course page's iframe. */
function loginUrl(storage: boolean): string {
  const q = new URLSearchParams({
    iss: lms.url, login_hint: 'hint-1', target_link_uri: lms.launchUrl, client_id: CLIENT_ID,
    lti_deployment_id: DEPLOYMENT, lti_message_hint: 'message-1',
  });
  if (storage) q.set('lti_storage_target', '_parent');
  return `${server.url}/lti/login?${q}`;
}

function course(page: Page, src: string, answer: boolean) {
  return page.goto(`${lms.url}/course?${new URLSearchParams({ src, answer: answer ? '1' : '0' })}`);
}

/** Withholds classchat's state cookie, as a browser that blocks it inside frames would. */
async function dropStateCookie(page: Page) {
  await page.route((u) => u.origin === server.url && u.pathname === '/lti/login', async (route) => {
    const r = await route.fetch({ maxRedirects: 0 });
    const headers = { ...r.headers() };
    delete headers['set-cookie'];
    await route.fulfill({ response: r, headers });
  });
}

test.describe.configure({ mode: 'serial' });

// Chromium's Local Network Access checks refuse a script navigation from the localhost
// frame to 127.0.0.1 (the login page going on to the LMS's sign-in); real LMSs and tools
// are not on loopback, so the check is off here. The other flags as playwright.config.ts.
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=LocalNetworkAccessChecks',
    ],
  },
});

test.beforeAll(async () => {
  await lms.start();
  server = await startClassChat(tempDir('classchat-e2e-lti-'), {
    accessCode: 'lti-unused-code',
    upstreamUrl: process.env.E2E_UPSTREAM_URL,
    allowedOrigins: lms.url,
    adminPassword: ADMIN_PASSWORD,
    publicHost: 'localhost',
  });
  lms.launchUrl = `${server.url}/lti/launch`;
});

test.afterAll(async () => {
  await server?.proc.stop();
  await lms.stop();
});

test('the administrator registers the LMS by Dynamic Registration and the page asks to close', async ({ page }) => {
  await page.goto(`${server.url}/admin/login`);
  await page.getByTestId('admin-login-password').fill(ADMIN_PASSWORD);
  await page.getByTestId('admin-login-submit').click();
  await page.goto(`${server.url}/admin/lti`);
  // Manual registration's values stay on the page, ready to copy.
  await expect(page.locator(`input[value="${server.url}/lti/login"]`)).toHaveCount(1);
  await page.getByRole('button', { name: /Make a registration URL/ }).click();
  const url = await page.getByTestId('lti-registration-url').inputValue();
  expect(url).toMatch(new RegExp(`^${server.url}/lti/register\\?ticket=`));

  const reg = `${url}&${new URLSearchParams({
    openid_configuration: `${lms.url}/.well-known/openid-configuration`,
    registration_token: REGISTRATION_TOKEN,
  })}`;
  await course(page, reg, false);
  await expect(page.frameLocator('iframe').getByText('classchat is registered')).toBeVisible();
  await expect.poll(() => page.evaluate(() => (window as unknown as { ltiClosed: number }).ltiClosed)).toBe(1);
  expect(lms.registrations).toHaveLength(1);
  expect(lms.registrations[0].initiate_login_uri).toBe(`${server.url}/lti/login`);
});

test('an instructor binds the course by Deep Linking inside the iframe', async ({ page }) => {
  lms.next = { sub: 'teacher-1', roles: [INSTRUCTOR], deepLinking: true, storage: false };
  await course(page, loginUrl(false), false);
  const frame = page.frameLocator('iframe');
  await frame.locator('input[name="title"]').fill('LTI biology');
  await frame.getByRole('button', { name: /Add/ }).click();
  await expect(frame.locator('#returned')).toBeVisible();
  expect(lms.deepLinkResponses).toHaveLength(1);
  const claims = JSON.parse(Buffer.from(lms.deepLinkResponses[0].split('.')[1], 'base64url').toString());
  expect(claims[`${DL}data`]).toBe('e2e-data');
  expect(claims[`${DL}content_items`][0].title).toBe('LTI biology');
});

test('a learner launches with Platform Storage when the cookie is withheld', async ({ page }) => {
  lms.next = { sub: 'learner-1', roles: [LEARNER], deepLinking: false, storage: true };
  await dropStateCookie(page);
  await course(page, loginUrl(true), true);
  const widget = page.frameLocator('iframe').locator('classchat-widget');
  await expect(widget.getByTestId('cc-input')).toBeEditable();
  await expect(widget.getByTestId('cc-title')).toHaveText('LTI biology');
  // State and nonce went into the platform's storage and came back from it.
  const counts = await page.evaluate(() => {
    const w = window as unknown as { puts: number; gets: number };
    return [w.puts, w.gets];
  });
  expect(counts).toEqual([2, 2]);
  expect(page.frames()[1].url()).toContain(`${server.url}/embed`);
});

test('without storage answers or a cookie, the launch says to open a new window', async ({ page }) => {
  lms.next = { sub: 'learner-2', roles: [LEARNER], deepLinking: false, storage: true };
  await dropStateCookie(page);
  await course(page, loginUrl(true), false);
  const frame = page.frameLocator('iframe');
  await expect(frame.locator('[data-error="storage_unavailable"]')).toBeVisible();
  await expect(frame.getByRole('heading', { name: 'Open classchat in a new window' })).toBeVisible();
  await expect(frame.getByRole('heading', { name: '請在新視窗開啟 classchat' })).toBeVisible();
  await expect(frame.locator('classchat-widget')).toHaveCount(0);
});

test('a learner launches with the partitioned state cookie alone', async ({ page }) => {
  lms.next = { sub: 'learner-3', roles: [LEARNER], deepLinking: false, storage: false };
  const login = page.waitForResponse((r) => r.url().startsWith(`${server.url}/lti/login`));
  await course(page, loginUrl(false), false);
  const setCookie = (await (await login).allHeaders())['set-cookie'] ?? '';
  for (const attr of ['SameSite=None', 'Secure', 'Partitioned', 'HttpOnly']) expect(setCookie).toContain(attr);
  const widget = page.frameLocator('iframe').locator('classchat-widget');
  await expect(widget.getByTestId('cc-input')).toBeEditable();
  await expect(widget.getByTestId('cc-title')).toHaveText('LTI biology');
});

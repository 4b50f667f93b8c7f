// Starts what the specs drive, once per run: the fake Open WebUI, classchat (fresh SQLite
// file) and the host page server on another origin. Their URLs reach the test workers
// through the environment (E2E_*); the returned function is the teardown.

import { cpSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { FullConfig } from '@playwright/test';

import { startClassChat, startFakeUpstream, tempDir, type Proc } from './tests/fixtures/processes';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startHostServer } = require('./host/serve.js');

export const ACCESS_CODE = 'bio-2024';
/** The teacher dashboard's password (at least 12 characters). */
export const ADMIN_PASSWORD = 'e2e-admin-password-2024';

export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  const dir = tempDir('classchat-e2e-');
  const procs: Proc[] = [];
  let host: import('node:http').Server | undefined;

  const teardown = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await new Promise<void>((r) => (host ? host.close(() => r()) : r()));
    // Keep the servers' logs with the other results, then drop the temp dir.
    const out = path.join(__dirname, 'test-results', 'server-logs');
    try {
      mkdirSync(out, { recursive: true });
      for (const p of procs) cpSync(p.logFile, path.join(out, path.basename(p.logFile)));
    } catch {
      // Logs are a convenience.
    }
    if (!process.env.E2E_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const upstream = await startFakeUpstream(dir);
    procs.push(upstream.proc);

    // The host page needs classchat's URL and classchat needs the host's origin (the only
    // allowed embedding origin, so CORS is exercised as configured in production). The host
    // server reads the URL per request, so start it first and fill the URL in afterwards.
    const serverRef = { url: '' };
    const started = await startHostServer(() => serverRef.url);
    host = started.server;
    const hostUrl: string = started.url;

    const server = await startClassChat(dir, {
      accessCode: ACCESS_CODE,
      upstreamUrl: upstream.url,
      allowedOrigins: hostUrl,
      adminPassword: ADMIN_PASSWORD,
    });
    procs.push(server.proc);
    serverRef.url = server.url;

    // Without widget/dist at compile time the binary has no widget: say so once, clearly.
    const loader = await fetch(`${server.url}/widget.js`);
    if (!loader.ok) {
      throw new Error(
        `${server.url}/widget.js answered ${loader.status}: this classchat binary was built without the widget. ` +
          'Run `TRUNK_SKIP_VERSION_CHECK=true trunk build --release` in the repository root, then rebuild the server.',
      );
    }

    process.env.E2E_HOST_URL = hostUrl;
    process.env.E2E_SERVER_URL = server.url;
    process.env.E2E_UPSTREAM_URL = upstream.url;
    process.env.E2E_ACCESS_CODE = ACCESS_CODE;
    process.env.E2E_ADMIN_PASSWORD = ADMIN_PASSWORD;
    process.env.E2E_LOG_DIR = dir;
    console.log(`e2e: host ${hostUrl}, classchat ${server.url}, fake upstream ${upstream.url}, logs in ${dir}`);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}

// Playwright drives Debian's Chromium (/usr/bin/chromium; `npx playwright install` is not
// used) against the real classchat binary. global-setup.ts starts the processes.
import { defineConfig, devices } from '@playwright/test';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  globalSetup: './global-setup.ts',
  // Two cores shared with builds: one browser at a time.
  workers: 1,
  fullyParallel: false,
  // A stray test.only fails the run anywhere, and a flaky test fails rather than passing
  // on a second try.
  forbidOnly: true,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: 'list',
  use: {
    ...devices['Desktop Chrome'],
    // The host page's origin; the fixtures fill it in from E2E_HOST_URL at run time.
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [{ name: 'chromium' }],
});

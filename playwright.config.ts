import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests against the production build (vite build + preview), in the system Chromium.
 * Shapes stay tiny (few steps, short sequences) so the whole suite fits a 2-core CI machine without a GPU;
 * the WebGPU project runs on SwiftShader, Chromium's software WebGPU adapter.
 */
// E2E_PORT / E2E_DIST let two checkouts' suites (or a suite beside a running preview) use their own server and build.
const PORT = Number(process.env.E2E_PORT ?? 4173);
const DIST = process.env.E2E_DIST ?? 'dist';
// E2E_HUB_PORT / E2E_HUB_CONTROL_PORT: the stand-in Hub's ports, for a suite run beside another one.
export const HUB_PORT = Number(process.env.E2E_HUB_PORT ?? 5199);
export const HUB_CONTROL_PORT = Number(process.env.E2E_HUB_CONTROL_PORT ?? 5198);
// CHROMIUM_PATH: another Chromium than Debian's (README, Quick start).
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const chromiumArgs = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export default defineConfig({
  testDir: 'e2e',
  timeout: 240_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1440, height: 1000 },
    actionTimeout: 30_000,
    launchOptions: { executablePath: CHROMIUM, args: chromiumArgs },
  },
  projects: [
    { name: 'wasm', testIgnore: /webgpu\.spec\.ts/ },
    {
      name: 'webgpu',
      testMatch: /webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath: CHROMIUM, args: [...chromiumArgs, '--enable-unsafe-webgpu'] } },
    },
  ],
  webServer: [
    {
      command: `npx vite build --outDir ${DIST} && npx vite preview --outDir ${DIST} --host 127.0.0.1 --port ${PORT} --strictPort`,
      url: `http://127.0.0.1:${PORT}`,
      reuseExistingServer: !process.env.CI,
      timeout: 180_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // The stand-in Hugging Face Hub (test/support/hub-server.ts) with a control port for e2e/hub.spec.ts.
      command: `npx tsx e2e/hub-server.ts --port ${HUB_PORT} --control ${HUB_CONTROL_PORT}`,
      url: `http://127.0.0.1:${HUB_PORT}/api/models/fixtures/gpt2-tiny/tree/main`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});

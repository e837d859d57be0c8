/**
 * Real models from a Hub (the stand-in of test/support/hub-server.ts, started by playwright.config.ts with a
 * control port, see e2e/hub-server.ts): header first (the module tree and the memory estimate before any
 * weight byte), a throttled download with a moving progress bar, cancel and resume with a Range request, a
 * reload and an offline load from the browser cache, one training step; and the errors a person can hit.
 */
import { expect, test, type Page } from '@playwright/test';
import type { LoggedRequest } from '../test/support/hub-server';
import { download, openStudio, setTinyArgs, startAndWait } from './helpers';

const HUB = 'http://127.0.0.1:5199';
const CONTROL = 'http://127.0.0.1:5198';
const SOTU = 'peft-studio/sotu-gpt2';

type Logged = Omit<LoggedRequest, 'server'>;

const hubLog = async (): Promise<Logged[]> => (await fetch(`${CONTROL}/requests`)).json();
const control = (path: string) => fetch(`${CONTROL}${path}`, { method: 'POST' });

async function setHubUrl(page: Page) {
  await page.getByTestId('hub-settings').locator('summary').click();
  await page.getByTestId('hub-url-input').fill(HUB);
}

async function loadFromHub(page: Page, id: string) {
  await page.getByTestId('hub-id-input').fill(id);
  await page.getByTestId('hub-load').click();
}

const phase = (page: Page) => page.getByTestId('model-status');
const loaded = async (page: Page) => Number(await page.getByTestId('load-progress').getAttribute('data-loaded'));

test.beforeEach(async () => {
  await control('/reset');
});

test('Hub errors say what is wrong; a gated repo loads with its token', async ({ page }) => {
  test.setTimeout(120_000);
  await openStudio(page);
  await setHubUrl(page);
  const error = page.getByTestId('model-error');

  await loadFromHub(page, 'fixtures/unsupported');
  await expect(error).toContainText('is a "mamba" model, which PEFT Studio cannot train');
  await expect(error).toContainText(/Supported model types: .*gpt2.*llama/);
  await expect(error).toContainText('Still using sotu-gpt2');
  await expect(page.getByTestId('load-retry')).toHaveCount(0);

  await loadFromHub(page, 'fixtures/pytorch-only');
  await expect(error).toContainText('has only PyTorch .bin weights');
  await expect(error).toContainText('safe_serialization=True');

  await loadFromHub(page, 'fixtures/no-such-model');
  await expect(error).toContainText('Repository fixtures/no-such-model was not found');
  await expect(page.getByTestId('model-error-link')).toHaveCount(0);
  await loadFromHub(page, 'fixtures/gpt2-tiny@v9');
  await expect(error).toContainText('Revision "v9" was not found in fixtures/gpt2-tiny');
  await loadFromHub(page, 'not a repo id');
  await expect(error).toContainText('is not a Hub model id');

  // Gated, no token: the message and a link to the repo page, where the conditions are accepted.
  await loadFromHub(page, 'fixtures/gated-gpt2');
  await expect(error).toContainText('fixtures/gated-gpt2 is a gated model: accept its conditions');
  await expect(page.getByTestId('model-error-link')).toHaveAttribute('href', `${HUB}/fixtures/gated-gpt2`);
  await expect(phase(page)).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('model-name')).toHaveText('sotu-gpt2');

  // With the token it loads; the fixture's tree has 2 layers (the built-in has 4).
  await page.getByTestId('hub-token-input').fill('hf_test_token');
  await loadFromHub(page, 'fixtures/gated-gpt2');
  await expect(phase(page)).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('model-name')).toHaveText('fixtures/gated-gpt2');
  await expect(error).toHaveCount(0);
  await expect(page.locator('[data-module="transformer.h.1"]')).toHaveCount(1);
  await expect(page.locator('[data-module="transformer.h.2"]')).toHaveCount(0);
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
  await expect(page.getByTestId('model-notes')).toContainText('has no tokenizer.json');
  // The token went to the Hub's files of the gated repo and nowhere else.
  const log = await hubLog();
  const withToken = log.filter((r) => r.authorization);
  expect(withToken.length).toBeGreaterThan(0);
  for (const r of withToken) expect(r.authorization).toBe('Bearer hf_test_token');
  expect(log.some((r) => r.path.includes('gated-gpt2/resolve/main/model.safetensors') && r.authorization && r.status === 302)).toBe(true);
});

test('header first, throttled download with cancel and resume, offline reload from the cache, train a step', async ({ page }, testInfo) => {
  test.setTimeout(180_000);
  await openStudio(page);
  await setHubUrl(page);
  await control('/throttle?chunk=262144&delay=60');

  // Batch 512 × 128 tokens without gradient checkpointing cannot fit the wasm heap: the studio stops after the
  // header and asks, suggesting checkpointing.
  await page.getByTestId('checkpointing').selectOption('off');
  await page.getByTestId('batch-size').fill('512');
  await loadFromHub(page, SOTU);
  await expect(phase(page)).toHaveAttribute('data-phase', 'confirm');
  await expect(page.getByTestId('model-name')).toHaveText(SOTU);
  await expect(page.getByTestId('memory-warnings')).toContainText('wasm backend can address at most');
  await expect(page.getByTestId('memory-warnings')).toContainText('turn on gradient checkpointing');
  await expect(page.getByTestId('download-anyway')).toHaveText(/Download anyway \(17\.\d MB\)/);
  await expect(page.locator('[data-module="transformer.h.3"]')).toHaveCount(1);
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
  await expect(page.getByTestId('inspection')).toContainText('stored as F32');
  await page.screenshot({ path: testInfo.outputPath('hub-header-first.png'), fullPage: true });
  // ...and so far only the safetensors header was read: range requests of at most 64 KB, no whole-file GET.
  const weightsPath = /\/(peft-studio\/sotu-gpt2\/resolve\/main|cdn\/peft-studio\/sotu-gpt2\/main)\/model\.safetensors$/;
  const weightReqs = (await hubLog()).filter((r) => weightsPath.test(r.path) && r.method === 'GET');
  expect(weightReqs.length).toBeGreaterThan(0);
  for (const r of weightReqs) {
    expect(r.range).toBe('bytes=0-65535');
    expect(r.bytes).toBeLessThanOrEqual(65536);
  }

  // A batch that fits: the warning goes, and the person downloads.
  await page.getByTestId('batch-size').fill('2');
  await expect(page.getByTestId('memory-warnings')).toHaveCount(0);
  await expect(page.getByTestId('download-anyway')).toHaveText(/^Download \(/);
  await page.getByTestId('download-anyway').click();
  await expect(phase(page)).toHaveAttribute('data-phase', 'downloading');

  // The bar moves (the stand-in Hub sends 256 KB every 60 ms).
  await expect.poll(() => loaded(page)).toBeGreaterThan(1_000_000);
  const first = await loaded(page);
  await expect(page.getByTestId('progress-text')).toContainText('model.safetensors');
  await expect(page.getByTestId('progress-text')).toContainText('/s');
  await page.locator('[data-panel=model]').screenshot({ path: testInfo.outputPath('hub-model-panel.png') });
  await expect.poll(() => loaded(page)).toBeGreaterThan(first + 1_000_000);

  // Cancel keeps what arrived; Resume continues from there with a Range request.
  await page.getByTestId('load-cancel').click();
  await expect(phase(page)).toHaveAttribute('data-phase', 'cancelled');
  await expect(page.getByTestId('model-error')).toContainText('are kept');
  await expect(page.getByTestId('start')).toBeDisabled();
  await page.getByTestId('load-retry').click();
  await expect(phase(page)).toHaveAttribute('data-phase', 'ready', { timeout: 60_000 });
  const resumed = (await hubLog()).filter((r) => weightsPath.test(r.path) && /^bytes=[1-9]\d*-$/.test(r.range ?? ''));
  expect(resumed.length).toBeGreaterThan(0);
  await control('/throttle?chunk=0&delay=0');

  const cache = page.getByTestId('cache-list');
  await cache.locator('summary').click();
  await expect(cache.locator(`[data-testid=cache-row][data-repo="${SOTU}"]`)).toContainText(/17\.\d MB/);
  await expect(cache.locator(`[data-testid=cache-row][data-repo="${SOTU}"]`)).toContainText('complete');

  // Reload, cut the Hub off, load again: from the cache, without a single request.
  await openStudio(page);
  await page.getByTestId('hub-settings').locator('summary').click();
  await expect(page.getByTestId('hub-url-input')).toHaveValue(HUB);
  let blocked = 0;
  await page.route(`${HUB}/**`, (route) => {
    blocked++;
    return route.abort('internetdisconnected');
  });
  const before = (await hubLog()).length;
  await loadFromHub(page, SOTU);
  await expect(phase(page)).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('model-name')).toHaveText(SOTU);
  await expect(page.getByTestId('model-status')).toContainText('from the cache');
  expect(blocked).toBe(0);
  expect((await hubLog()).length).toBe(before);

  // Train a step on it; the adapter names the Hub repo as its base model.
  await setTinyArgs(page, { steps: 2, evalSteps: 0, maxLength: 16, batch: 2, lr: 0.001 });
  await startAndWait(page);
  const cfg = JSON.parse((await download(page, 'download-config')).toString('utf8'));
  expect(cfg.base_model_name_or_path).toBe(SOTU);

  // Delete it from the cache.
  await page.getByTestId('cache-list').locator('summary').click();
  const row = page.locator(`[data-testid=cache-row][data-repo="${SOTU}"]`);
  await row.getByTestId('cache-delete').click();
  await expect(row).toHaveCount(0);
});

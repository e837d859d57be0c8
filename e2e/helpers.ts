/** Shared steps for the e2e tests: open the studio, set tiny training shapes, train, download. */
import { readFileSync } from 'node:fs';
import { expect, type Page } from '@playwright/test';
import { parseHeader } from '../src/engine/io/safetensors';

/** Opens the studio and waits for the backend, the built-in model, its module tree and the default data. */
export async function openStudio(page: Page, path = '/'): Promise<void> {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto(path);
  await expect(page.locator('.pill')).toContainText('backend:', { timeout: 90_000 });
  await expect(page.getByTestId('model-status')).toContainText('sotu-gpt2', { timeout: 90_000 });
  // Read header first, then downloaded: the tree shows before the weights are in, so wait for both.
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready', { timeout: 90_000 });
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
  await expect(page.getByTestId('data-summary')).toBeVisible();
}

export interface TinyArgs {
  steps: number;
  evalSteps: number;
  maxLength: number;
  batch: number;
  lr: number;
}

/** Small shapes for a 2-core CI machine. */
export async function setTinyArgs(page: Page, a: TinyArgs): Promise<void> {
  await page.getByTestId('max-steps').fill(String(a.steps));
  await page.getByTestId('eval-steps').fill(String(a.evalSteps));
  await page.getByTestId('max-length').fill(String(a.maxLength));
  await page.getByTestId('batch-size').fill(String(a.batch));
  await page.getByTestId('lr').fill(String(a.lr));
  // The data summary reloads for the new max length; Start is enabled once it is back.
  await expect(page.getByTestId('token-stats')).toContainText(`${a.maxLength} tokens`);
}

export async function startAndWait(page: Page, timeout = 180_000): Promise<void> {
  await expect(page.getByTestId('start')).toBeEnabled();
  await page.getByTestId('start').click();
  await expectFinished(page, timeout);
}

/** Waits for the run to end and fails with the studio's own error text when it did not finish. */
export async function expectFinished(page: Page, timeout = 180_000): Promise<void> {
  await expect(page.getByTestId('run-state')).toHaveText(/Finished|Failed|Stopped/, { timeout });
  const state = await page.getByTestId('run-state').textContent();
  if (state !== 'Finished') {
    const err = await page.getByTestId('run-error').textContent().catch(() => '(no error shown)');
    throw new Error(`run ended as ${state}: ${err}`);
  }
}

/** Clicks a download button and returns the downloaded bytes. */
export async function download(page: Page, testId: string): Promise<Buffer> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  const path = await d.path();
  return readFileSync(path);
}

/** Tensor names and shapes of a safetensors file. */
export function safetensorsShapes(bytes: Buffer): Record<string, number[]> {
  const h = parseHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'adapter_model.safetensors', bytes.byteLength);
  return Object.fromEntries(Object.entries(h.tensors).map(([k, v]) => [k, v.shape]));
}

/** A file of the built-in model, as the studio serves it. */
export async function builtinFile(page: Page, name: string): Promise<Buffer> {
  const r = await page.request.get(`/models/sotu-gpt2/${name}`);
  expect(r.ok()).toBe(true);
  return r.body();
}

/** Number of points a chart reports (its data-points attribute). */
export async function chartPoints(page: Page, testId: string): Promise<number> {
  return Number(await page.getByTestId(testId).getAttribute('data-points'));
}

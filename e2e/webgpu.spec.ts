/** Training on WebGPU (SwiftShader in CI): chosen explicitly, since auto prefers WASM over a software GPU. */
import { expect, test } from '@playwright/test';
import { chartPoints, openStudio, setTinyArgs, startAndWait } from './helpers';

test('trains a few steps on WebGPU', async ({ page }) => {
  test.setTimeout(300_000);
  await openStudio(page);
  await page.getByRole('radiogroup', { name: 'Backend' }).getByRole('radio', { name: 'WebGPU' }).click();
  await expect(page.getByTestId('backend-name')).toHaveText('webgpu', { timeout: 60_000 });
  await expect(page.getByTestId('backend-reason')).toContainText('WebGPU');
  await setTinyArgs(page, { steps: 3, evalSteps: 0, maxLength: 16, batch: 2, lr: 0.001 });
  await startAndWait(page, 240_000);
  expect(await chartPoints(page, 'chart-lr')).toBe(3);
  await expect(page.getByTestId('run-error')).toHaveCount(0);
  const loss = Number((await page.locator('[data-testid=run-stats] dd').nth(2).textContent()) ?? 'NaN');
  // A causal-LM loss over a 4096-token vocabulary: finite and well above 0 (a broken GPU readback gives 0 or NaN).
  expect(Number.isFinite(loss)).toBe(true);
  expect(loss).toBeGreaterThan(1);
  expect(loss).toBeLessThan(12);
});

test('a lost WebGPU device moves the project to WASM and the run continues from its last checkpoint', async ({ page }) => {
  test.setTimeout(300_000);
  // The worker destroys its device after step 5, as a driver reset would; the last checkpoint is at step 4.
  await openStudio(page, '/?loseWebGpuAtStep=5');
  await page.getByRole('radiogroup', { name: 'Backend' }).getByRole('radio', { name: 'WebGPU' }).click();
  await expect(page.getByTestId('backend-name')).toHaveText('webgpu', { timeout: 60_000 });
  // A small upload keeps the evaluations (a tenth of it) short on the software GPU.
  const paragraphs = Array.from({ length: 20 }, (_, i) => `Paragraph ${i}: the state of the union is strong, and we shall prevail together.`);
  await page.getByTestId('data-file-input').setInputFiles({ name: 'small.txt', mimeType: 'text/plain', buffer: Buffer.from(paragraphs.join('\n\n')) });
  await expect(page.getByTestId('data-summary')).toContainText('small.txt');
  await setTinyArgs(page, { steps: 8, evalSteps: 2, maxLength: 16, batch: 2, lr: 0.01 });
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-error')).toContainText('The WebGPU device was lost', { timeout: 240_000 });
  await expect(page.getByTestId('run-error')).toContainText('moves to WASM');
  await expect(page.getByTestId('backend-name')).toHaveText('wasm', { timeout: 60_000 });
  // The run on WebGPU ended as failed; the one that must finish is its continuation on WASM.
  await expect(page.getByTestId('run-state')).toHaveText('Finished', { timeout: 240_000 });
  // The same run, one curve: steps 1-4 from the checkpoint, 5-8 trained on WASM.
  const steps = (await page.getByTestId('chart-loss').getAttribute('data-steps'))!.split(',').map(Number);
  expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row').first()).toHaveAttribute('data-status', 'completed');
});

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

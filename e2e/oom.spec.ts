/**
 * Out of memory mid-run, on a device with less memory (the `wasmTensorLimitMB` diagnostics parameter makes wasm
 * allocations fail past that much tensor memory): the run fails with a readable message that says what to
 * change, the last good adapter stays downloadable, and the studio trains again once the settings fit.
 */
import { expect, test } from '@playwright/test';
import { download, expectFinished, openStudio, safetensorsShapes, setTinyArgs } from './helpers';

test('an out-of-memory run keeps the last adapter and the studio stays usable', async ({ page }) => {
  test.setTimeout(240_000);
  // The built-in model's weights are 17 MB; a batch of 16 x 128 needs a few hundred MB to train.
  await openStudio(page, '/?wasmTensorLimitMB=48');
  await page.getByTestId('checkpointing').selectOption('off');
  await setTinyArgs(page, { steps: 6, evalSteps: 0, maxLength: 128, batch: 16, lr: 0.003 });
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-state')).toHaveText('Failed', { timeout: 120_000 });
  await expect(page.getByTestId('run-error')).toContainText(/Out of memory.*(batch size|gradient checkpointing)/);
  // What was trained before the failure (here: the starting adapter) is still there to download.
  await expect(page.getByTestId('checkpoint-info')).toContainText('step 0');
  const weights = safetensorsShapes(await download(page, 'download-weights'));
  expect(Object.keys(weights).length).toBeGreaterThan(0);

  // Smaller settings fit: the same tab trains to the end.
  await setTinyArgs(page, { steps: 4, evalSteps: 0, maxLength: 32, batch: 2, lr: 0.003 });
  await page.getByTestId('start').click();
  await expectFinished(page);
  await expect(page.getByTestId('checkpoint-info')).toContainText('step 4');
});

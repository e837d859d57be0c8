/** SEQ_CLS on the built-in spam data: labels from the data, accuracy and F1 on the chart, classify on/off. */
import { expect, test } from '@playwright/test';
import { chartPoints, download, openStudio, safetensorsShapes, setTinyArgs, startAndWait } from './helpers';

test('classifies spam with accuracy on the chart', async ({ page }) => {
  test.setTimeout(300_000);
  await openStudio(page);
  await page.getByRole('radio', { name: /SEQ_CLS/ }).click();
  await expect(page.getByTestId('dataset-select')).toHaveValue('spam');
  await expect(page.getByTestId('labels-line')).toContainText('0 = ham, 1 = spam');
  // The classification head is a modules_to_save copy: marked in the tree and counted as trainable.
  await expect(page.locator('[data-module="score"]')).toHaveClass(/saved/);
  await setTinyArgs(page, { steps: 4, evalSteps: 2, maxLength: 32, batch: 4, lr: 0.005 });
  await startAndWait(page);
  expect(await chartPoints(page, 'chart-accuracy')).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('accuracy')).toHaveText(/^\d+\.\d%$/);
  await expect(page.getByTestId('chart-accuracy')).toContainText('F1');

  const keys = Object.keys(safetensorsShapes(await download(page, 'download-weights')));
  expect(keys).toContain('base_model.model.score.weight');
  const cfg = JSON.parse((await download(page, 'download-config')).toString('utf8'));
  expect(cfg.task_type).toBe('SEQ_CLS');
  expect(cfg.modules_to_save).toEqual(['classifier', 'score']);

  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('cls-on')).toContainText('%');
  await expect(page.getByTestId('cls-off')).toContainText('%');
});

/**
 * The Quick demo preset learns on the built-in data: spam classification passes 85% validation accuracy and
 * language modelling lowers the eval loss by a clear margin (docs/presets.md has the measurements behind both
 * thresholds); the charts draw the base model's step-0 evaluation and, for classification, the majority-class and
 * bag-of-words reference lines; a field changed after the preset shows as custom.
 */
import { expect, test, type Page } from '@playwright/test';
import { openStudio, startAndWait } from './helpers';

/** The chart's reference lines as { key: y } (its data-refs attribute). */
async function refs(page: Page, testId: string): Promise<Record<string, number>> {
  const attr = (await page.getByTestId(testId).getAttribute('data-refs')) ?? '';
  return Object.fromEntries(attr.split(',').filter(Boolean).map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
}

async function applyQuick(page: Page): Promise<void> {
  // Clicked again if the first click is lost (seen once, right after the studio finished loading).
  await expect(async () => {
    await page.getByTestId('preset-quick').click();
    await expect(page.getByTestId('preset-status')).toHaveAttribute('data-preset', 'quick', { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByTestId('preset-status')).toHaveAttribute('data-custom', '');
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
}

test('Quick demo: spam classification reaches 85% validation accuracy, above the majority line', async ({ page }) => {
  // 500 steps (docs/presets.md): about 4 minutes on 2 cores, more on a loaded machine.
  test.setTimeout(780_000);
  await openStudio(page);
  await page.getByRole('radio', { name: /SEQ_CLS/ }).click();
  await expect(page.getByTestId('dataset-select')).toHaveValue('spam');
  await applyQuick(page);
  await expect(page.getByTestId('max-steps')).toHaveValue('500');
  await expect(page.getByTestId('token-stats')).toContainText('64 tokens');
  // A field changed after the preset shows as custom, and is no longer once it is back at the preset's value.
  const lr = await page.getByTestId('lr').inputValue();
  await page.getByTestId('lr').fill('0.01');
  await expect(page.getByTestId('preset-status')).toHaveAttribute('data-custom', 'learningRate');
  await expect(page.getByTestId('preset-status')).toContainText('custom: learning rate');
  await page.getByTestId('lr').fill(lr);
  await expect(page.getByTestId('preset-status')).toHaveAttribute('data-custom', '');

  await startAndWait(page, 720_000);
  const acc = Number(await page.getByTestId('accuracy').getAttribute('data-value'));
  // The number in the test log: docs/presets.md measured 91% with the CLI.
  console.log(`Quick demo spam validation accuracy: ${acc}`);
  expect(acc).toBeGreaterThanOrEqual(0.85);
  const r = await refs(page, 'chart-accuracy');
  // The built-in split is balanced (majority 50%); words alone reach 96% on it.
  expect(r.majority).toBe(0.5);
  expect(r.bow).toBeGreaterThan(0.9);
  expect(r.base).toBeGreaterThanOrEqual(0);
  expect(acc).toBeGreaterThan(r.base);
  await expect(page.getByTestId('chart-accuracy')).toContainText('bag-of-words LR');
  await expect(page.getByTestId('chart-accuracy')).toContainText('majority class');
  expect((await refs(page, 'chart-loss')).base).toBeGreaterThan(0);

  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('cls-on')).toContainText('spam');
  await expect(page.getByTestId('cls-off-note')).toContainText('meaningless');
});

test('Quick demo: language modelling lowers the eval loss below the base model line', async ({ page }) => {
  test.setTimeout(300_000);
  await openStudio(page);
  await expect(page.getByTestId('dataset-select')).toHaveValue('sotu-fdr');
  await applyQuick(page);
  await startAndWait(page, 240_000);
  const base = (await refs(page, 'chart-loss')).base;
  const last = Number(await page.getByTestId('eval-loss').getAttribute('data-value'));
  expect(base).toBeGreaterThan(4);
  // Measured: 5.1845 -> 5.1200 after the preset's 60 steps (docs/presets.md).
  expect(base - last).toBeGreaterThanOrEqual(0.04);
  expect((await refs(page, 'chart-accuracy')).base).toBeGreaterThan(0);

  // Sampling with the same seed on both sides: the adapter changes the text (greedy decoding of this small model
  // falls into the same repetition loop with and without it).
  await page.getByTestId('temperature').fill('0.8');
  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('gen-on')).toBeVisible();
  const on = await page.getByTestId('gen-on').textContent();
  const off = await page.getByTestId('gen-off').textContent();
  expect(on).not.toBe(off);
});

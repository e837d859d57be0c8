/**
 * TOKEN_CLS on a Hub NER dataset (tests/ner on the stand-in Hub: `tokens` / `ner_tags` Parquet list columns, the
 * tag names in the Parquet footer's features): the label list comes from the features, the entity counts and a
 * tagged sentence show, and a short run on its validation split raises entity F1 above the untrained head's.
 */
import { expect, test } from '@playwright/test';
import { HUB_PORT } from '../playwright.config';
import { openStudio, setTinyArgs, startAndWait } from './helpers';

test('a Hub NER dataset: tags from its features, entities counted, entity F1 rises', async ({ page }) => {
  test.setTimeout(120_000);
  await openStudio(page);
  await page.getByRole('radio', { name: /TOKEN_CLS/ }).click();
  await expect(page.getByTestId('task-class')).toContainText('GPT2ForTokenClassification');
  await page.getByTestId('hub-settings').locator('summary').click();
  await page.getByTestId('hub-url-input').fill(`http://127.0.0.1:${HUB_PORT}`);

  await page.locator('.hub-data > summary').click();
  await page.getByTestId('hub-dataset-id').fill('tests/ner');
  await page.getByTestId('hub-dataset-validation').fill('validation');
  await page.getByTestId('hub-dataset-load').click();

  await expect(page.getByTestId('hub-splits')).toContainText('train 24 rows, validation 8 rows');
  await expect(page.getByTestId('hub-tokcls-columns')).toContainText("Words from tokens, tags from ner_tags, tag names from the dataset's features (the Parquet metadata)");
  await expect(page.getByTestId('data-summary')).toContainText('24 training rows, 8 validation rows');
  await expect(page.getByTestId('label-list')).toHaveValue('O,B-PER,I-PER,B-LOC,I-LOC');
  // Six copies of four sentences with 5 people and 4 places (New York one of them) per copy.
  await expect(page.getByTestId('tokcls-stats')).toContainText('train: 24 sentences, 114 words');
  await expect(page.getByTestId('tokcls-stats')).toContainText('entities LOC 24, PER 30');
  const sample = page.getByTestId('tokcls-sample').getByTestId('entity');
  await expect(sample).toHaveCount(2);
  await expect(sample.first()).toHaveAttribute('data-type', 'PER');
  await expect(sample.first()).toContainText('John');
  await expect(sample.last()).toHaveAttribute('data-type', 'LOC');

  await page.getByTestId('target-modules-input').fill('c_attn');
  await setTinyArgs(page, { steps: 40, evalSteps: 20, maxLength: 16, batch: 4, lr: 0.03 });
  await startAndWait(page);
  const f1 = ((await page.getByTestId('charts').getAttribute('data-f1')) ?? '').split(',').map(Number);
  expect(f1.length).toBe(3);
  // The CLI on the same rows (40 steps, lr 3e-2, c_attn): entity F1 0.71 at step 40; the untrained head finds next to none.
  expect(f1[2]).toBeGreaterThan(f1[0] + 0.2);
});

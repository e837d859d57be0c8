/**
 * Instruction data and the chat playground: the built-in sotu-qa dataset is read as Alpaca rows with the loss on
 * the answers, a short run lowers the answer loss by a wide margin (public/datasets/sotu-qa/README.md has the
 * measurements), the chat mode streams a reply rendered with the run's template, and Stop ends a long generation.
 */
import { expect, test, type Page } from '@playwright/test';
import { expectFinished, openStudio, setTinyArgs } from './helpers';

async function refs(page: Page, testId: string): Promise<Record<string, number>> {
  const attr = (await page.getByTestId(testId).getAttribute('data-refs')) ?? '';
  return Object.fromEntries(attr.split(',').filter(Boolean).map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
}

test('instruction data: answers-only loss drops, chat streams, Stop stops', async ({ page }) => {
  test.setTimeout(240_000);
  await openStudio(page);
  await page.getByTestId('dataset-select').selectOption('sotu-qa');
  await expect(page.getByTestId('data-format')).toContainText('auto (alpaca)');
  await expect(page.getByTestId('chat-stats')).toContainText('alpaca rows rendered with the alpaca template');
  // The answer is highlighted as trained on, the instruction and passage are masked.
  await expect(page.getByTestId('chat-preview').locator('[data-trained="true"]').first()).toBeVisible();
  await expect(page.getByTestId('chat-preview').locator('[data-trained="false"]').first()).toContainText('### Instruction:');

  await setTinyArgs(page, { steps: 20, evalSteps: 20, maxLength: 96, batch: 8, lr: 0.003 });
  await page.getByTestId('start').click();
  await expectFinished(page, 150_000);
  const base = (await refs(page, 'chart-loss')).base;
  const last = Number(await page.getByTestId('eval-loss').getAttribute('data-value'));
  console.log(`answer loss: base ${base} -> ${last} after 20 steps`);
  // Measured in the studio (wasm): 8.613 -> 6.896 after these 20 steps; the base model's 8.61 matches the CLI's.
  expect(base).toBeGreaterThan(8);
  expect(base - last).toBeGreaterThanOrEqual(1.2);

  // Chat mode is on for a run on chat data; the reply streams in and the prompt is the Alpaca rendering.
  await expect(page.getByTestId('chat-mode')).toBeChecked();
  await page.getByTestId('chat-input').fill('Who gave the State of the Union address that contains this passage, and in what year? We must keep our Union strong.');
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-on')).not.toBeEmpty({ timeout: 30_000 });
  await expect(page.locator('[data-testid="chat-on"]:not([data-streaming])')).toBeVisible({ timeout: 60_000 });
  await page.getByText('The prompt as rendered').click();
  await expect(page.getByTestId('chat-rendered')).toContainText('### Instruction:\nWho gave the State of the Union address');
  await expect(page.getByTestId('chat-rendered')).toContainText('### Response:');
  await expect(page.getByTestId('chat-turns')).toContainText('user:');

  // A long plain generation: text streams in while it runs, Stop ends it early, and the model still generates.
  await page.getByTestId('chat-mode').uncheck();
  await page.getByLabel('new tokens').fill('500');
  await page.getByTestId('temperature').fill('0.8');
  await page.getByTestId('playground-run').click();
  // While it streams the text shows under gen-on-live; gen-on appears once it has ended.
  await expect(page.getByTestId('gen-on-live')).not.toHaveText(/^My fellow citizens,$/, { timeout: 30_000 });
  await page.getByTestId('playground-stop').click();
  await expect(page.getByTestId('gen-stopped')).toBeVisible({ timeout: 10_000 });
  const words = ((await page.getByTestId('gen-on').textContent()) ?? '').split(/\s+/).length;
  expect(words).toBeLessThan(400);
  await page.getByLabel('new tokens').fill('5');
  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('ms-per-token')).toBeVisible({ timeout: 30_000 });
});

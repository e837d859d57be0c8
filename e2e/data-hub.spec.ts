/**
 * A chat dataset from the stand-in Hub: its splits and row counts before training, the first example rendered
 * with the prompt masked and the answer highlighted, then a few training steps with the loss going down.
 */
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { HUB_PORT } from '../playwright.config';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { chatRow } from '../test/support/dataset-fixtures';
import { openStudio, setTinyArgs, startAndWait } from './helpers';

test('a chat dataset from the Hub trains on its answers', async ({ page }) => {
  await openStudio(page);
  await page.getByTestId('hub-settings').locator('summary').click();
  await page.getByTestId('hub-url-input').fill(`http://127.0.0.1:${HUB_PORT}`);

  await page.locator('.hub-data > summary').click();
  await page.getByTestId('hub-dataset-id').fill('tests/chat-qa');
  await page.getByTestId('hub-dataset-validation').fill('test');
  await page.getByTestId('hub-dataset-rows').fill('24');
  await page.getByTestId('hub-dataset-load').click();

  await expect(page.getByTestId('hub-splits')).toContainText('train 24 rows, test 6 rows');
  await expect(page.getByTestId('data-summary')).toContainText('24 training rows, 6 validation rows');
  await expect(page.getByTestId('data-format')).toContainText('auto (messages)');
  // The first example as the model sees it: system and user turns masked, the answer trained on.
  const preview = page.getByTestId('chat-preview');
  await expect(preview.locator('[data-trained="true"]')).toHaveText(['Paris.<|im_end|>\n'], { useInnerText: false });
  await expect(preview.locator('[data-trained="false"]').first()).toContainText('Answer in one word.');
  await expect(preview.locator('[data-trained="false"]')).toContainText([/Tell me the capital of France/]);
  // Trained on: the tokens of each of the 24 training rows' "answer<|im_end|>\n", from the tokenizer alone.
  const tok = await loadTokenizerFromDir(join(import.meta.dirname, '..', 'public/models/sotu-gpt2'));
  const trained = Array.from({ length: 24 }, (_, i) => tok.encode(`${chatRow(i).messages[2].content}<|im_end|>\n`, { addSpecialTokens: false }).length).reduce((a, b) => a + b, 0);
  await expect(page.getByTestId('chat-stats')).toContainText(`${trained.toLocaleString('en-US')} of `);

  await setTinyArgs(page, { steps: 12, evalSteps: 0, maxLength: 64, batch: 4, lr: 0.01 });
  // Every loss the Live panel shows, in order.
  await page.evaluate(() => {
    const w = window as unknown as { losses: number[] };
    w.losses = [];
    const el = document.querySelector('[data-testid="loss"]')!;
    new MutationObserver(() => {
      const v = Number(el.textContent);
      if (Number.isFinite(v) && v !== w.losses[w.losses.length - 1]) w.losses.push(v);
    }).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await startAndWait(page);
  const losses = await page.evaluate(() => (window as unknown as { losses: number[] }).losses);
  expect(losses.length).toBeGreaterThan(3);
  expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.8);
});

/**
 * Every PEFT method the engine registers, trained for a few steps in the studio on the built-in model and
 * downloaded: the method picker lists it with its description and PEFT's trainable line, the run finishes,
 * and the two files parse with the method's own key set and peft_type.
 */
import { expect, test } from '@playwright/test';
import { download, expectFinished, openStudio, safetensorsShapes, setTinyArgs } from './helpers';

/** What each method's adapter_model.safetensors holds (PEFT's file keys). */
const KEYS: Record<string, RegExp> = {
  LORA: /^base_model\.model\..+\.lora_[AB]\.weight$/,
  ADALORA: /^base_model\.model\..+\.lora_[ABE]$/,
  IA3: /^base_model\.model\..+\.ia3_l$/,
  PROMPT_TUNING: /^prompt_embeddings$/,
  P_TUNING: /^prompt_embeddings$/,
  PREFIX_TUNING: /^prompt_embeddings$/,
};

test('each method trains a few steps and downloads PEFT files with its key set', async ({ page }) => {
  test.setTimeout(420_000);
  await openStudio(page);
  const picker = page.getByTestId('method');
  const types = await picker.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(types).toEqual(expect.arrayContaining(['LORA', 'PROMPT_TUNING']));
  for (const peftType of types) {
    await picker.selectOption(peftType);
    await expect(page.getByTestId('method-description')).not.toBeEmpty();
    await expect(page.getByTestId('trainable-line')).toHaveText(/^trainable params: [\d,]+ \|\| all params/);
    await setTinyArgs(page, { steps: 3, evalSteps: 0, maxLength: 32, batch: 2, lr: 0.01 });
    await expect(page.getByTestId('start')).toBeEnabled();
    await page.getByTestId('start').click();
    await expectFinished(page);
    await expect(page.getByTestId('checkpoint-info')).toContainText('step 3');
    const keys = Object.keys(safetensorsShapes(await download(page, 'download-weights')));
    expect(keys.length, peftType).toBeGreaterThan(0);
    const pattern = KEYS[peftType];
    if (pattern) for (const k of keys) expect(k, `${peftType} key`).toMatch(pattern);
    const cfg = JSON.parse((await download(page, 'download-config')).toString('utf8'));
    expect(cfg.peft_type).toBe(peftType);
    expect(cfg.task_type).toBe('CAUSAL_LM');
  }
});

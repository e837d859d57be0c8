/**
 * Importing an adapter (WASM): train a few steps on the built-in model, download adapter_model.safetensors and
 * adapter_config.json, start a new project, import the folder, and the playground generates with it exactly what
 * the trained run generated (greedy); the panels show the imported config; a corrupt file is a message naming it
 * and the imported adapter stays; a run continues from the imported weights.
 */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { download, expectFinished, openStudio, setTinyArgs } from './helpers';

const PROMPT = 'My fellow citizens,';

async function generateBoth(page: Page): Promise<{ on: string; off: string }> {
  await page.getByTestId('playground-input').fill(PROMPT);
  await page.getByLabel('new tokens').fill('20');
  await page.getByTestId('temperature').fill('0');
  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('playground-run')).toHaveText('Generate');
  await expect(page.getByTestId('playground-error')).toHaveCount(0);
  await expect(page.getByTestId('gen-on')).toBeVisible();
  return { on: (await page.getByTestId('gen-on').textContent())!, off: (await page.getByTestId('gen-off').textContent())! };
}

test('download a trained adapter, import it into a new project, play and continue training', async ({ page }) => {
  test.setTimeout(180_000);
  await openStudio(page);
  await setTinyArgs(page, { steps: 8, evalSteps: 4, maxLength: 32, batch: 4, lr: 0.03 });
  await page.getByTestId('field-r').fill('4');
  await page.getByTestId('start').click();
  await expectFinished(page);
  const trained = await generateBoth(page);
  expect(trained.on).not.toBe(trained.off);

  // The two files, as a folder PEFT would have saved (with a model card beside them).
  const dir = join(mkdtempSync(join(tmpdir(), 'peft-import-')), 'sotu-lora');
  mkdirSync(dir);
  const weights = await download(page, 'download-weights');
  writeFileSync(join(dir, 'adapter_model.safetensors'), weights);
  const config = await download(page, 'download-config');
  writeFileSync(join(dir, 'adapter_config.json'), config);
  writeFileSync(join(dir, 'README.md'), '# an adapter\n');

  // A new project: default settings (r back to 8), no run in the worker.
  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('new-project').click();
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready', { timeout: 90_000 });
  await expect(page.getByTestId('field-r')).toHaveValue('8');

  await page.getByTestId('import-folder-input').setInputFiles(dir);
  await expect(page.getByTestId('import-info')).toContainText('imported: sotu-lora, LoRA r=4, alpha 16 on c_attn');
  await expect(page.getByTestId('import-error')).toHaveCount(0);
  // Its config is the project's now: method settings and targets.
  await expect(page.getByTestId('field-r')).toHaveValue('4');
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_attn');
  await expect(page.getByTestId('playground-adapter')).toContainText('imported: sotu-lora, LoRA r=4');

  // Greedy decoding with the imported adapter is what the trained run generated; off is the base model.
  const imported = await generateBoth(page);
  expect(imported).toEqual(trained);

  // Evaluation on the validation split, with and without the adapter.
  await page.getByTestId('import-evaluate').click();
  await expect(page.getByTestId('import-eval-on')).toContainText(/\d\.\d{4}/);
  const evalOn = await page.getByTestId('import-eval-on').textContent();
  const evalOff = await page.getByTestId('import-eval-off').textContent();
  expect(evalOn).not.toBe(evalOff);

  // A corrupt weights file: the message names it, and the adapter imported before is still the one in use.
  const bad = join(dir, '..', 'broken-adapter');
  mkdirSync(bad);
  writeFileSync(join(bad, 'adapter_config.json'), config);
  const corrupt = Buffer.from(weights);
  corrupt.writeBigUInt64LE(BigInt(corrupt.length * 4), 0); // a header longer than the file
  writeFileSync(join(bad, 'adapter_model.safetensors'), corrupt);
  await page.getByTestId('import-folder-input').setInputFiles(bad);
  await expect(page.getByTestId('import-error')).toContainText('broken-adapter/adapter_model.safetensors');
  await expect(page.getByTestId('import-info')).toContainText('imported: sotu-lora');
  await expect(page.getByTestId('playground-adapter')).toContainText('imported: sotu-lora');
  expect(await generateBoth(page)).toEqual(trained);

  // Continue training from the imported weights: a short run, which then is the playground's adapter.
  await setTinyArgs(page, { steps: 2, evalSteps: 0, maxLength: 32, batch: 4, lr: 0.01 });
  await page.getByTestId('import-train').click();
  await expectFinished(page);
  await expect(page.getByTestId('playground-adapter')).toContainText('trained on from imported sotu-lora');
  const continued = await generateBoth(page);
  expect(continued.off).toBe(trained.off);
});

/**
 * The whole journey on the built-in model (WASM): pick targets in the tree, train a few steps with a pause,
 * watch the charts, download the adapter and check it against the picked targets, then compare the adapter
 * with the base model in the playground. (README's screenshot comes from e2e/readme-screenshot.spec.ts.)
 */
import { expect, test } from '@playwright/test';
import { strFromU8, unzipSync } from 'fflate';
import { builtinFile, chartPoints, download, expectFinished, openStudio, safetensorsShapes, setTinyArgs } from './helpers';

/** [in, out] of GPT-2's Conv1D modules by their name inside a block. */
function conv1dFeatures(config: { n_embd: number; n_inner: number | null }): Record<string, [number, number]> {
  const E = config.n_embd;
  const inner = config.n_inner ?? 4 * E;
  return { 'attn.c_attn': [E, 3 * E], 'attn.c_proj': [E, E], 'mlp.c_fc': [E, inner], 'mlp.c_proj': [inner, E] };
}

test('pick targets, train, pause, export and compare in the playground', async ({ page }) => {
  test.setTimeout(300_000);
  await openStudio(page);
  await expect(page.getByTestId('backend-name')).toHaveText('wasm');

  // PEFT's default for GPT-2 is c_attn; add layer 0's attention output projection by clicking the tree.
  const line = page.getByTestId('trainable-line');
  const before = await line.textContent();
  const box = page.locator('[data-module="transformer.h.0.attn.c_proj"] input[type=checkbox]');
  await box.click();
  // The tree shows what the rewritten PEFT text matches, once the worker has resolved it.
  await expect(box).toBeChecked();
  await expect(line).not.toHaveText(before!);
  await expect(line).toHaveText(/^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}$/);
  await expect(page.getByTestId('target-modules-input')).toHaveValue(/c_attn/);
  // A target that matches nothing is an inline error, and the studio carries on.
  await page.getByTestId('target-modules-input').fill('no_such_module');
  await expect(page.getByTestId('targets-error')).toContainText('not found in the base model');
  await expect(page.getByTestId('start')).toBeDisabled();
  await page.getByTestId('target-modules-input').fill('c_attn, 0.attn.c_proj');
  await expect(page.getByTestId('targets-error')).toHaveCount(0);
  // Everything the text matches, collapsed rows included: every layer's c_attn plus layer 0's attn.c_proj.
  const config = JSON.parse((await builtinFile(page, 'config.json')).toString('utf8'));
  const matched = ((await page.getByTestId('module-tree').getAttribute('data-matched')) ?? '').split(' ');
  const layers = Array.from({ length: config.n_layer as number }, (_, i) => `transformer.h.${i}.attn.c_attn`);
  expect(matched.sort()).toEqual([...layers, 'transformer.h.0.attn.c_proj'].sort());

  await page.getByTestId('field-r').fill('4');
  await setTinyArgs(page, { steps: 12, evalSteps: 4, maxLength: 32, batch: 4, lr: 0.003 });

  // Train, pause mid-way for the screenshot, resume to the end.
  await page.getByTestId('start').click();
  await expect(page.getByTestId('step')).toHaveText(/^([6-9]|1\d) \//, { timeout: 120_000 });
  await page.getByTestId('pause').click();
  await expect(page.getByTestId('run-state')).toHaveText('Paused');
  await expect.poll(() => chartPoints(page, 'chart-loss')).toBeGreaterThan(3);
  // Export works during training (latest weights).
  await page.getByTestId('snapshot').click();
  await expect(page.getByTestId('checkpoint-info')).toContainText('step');
  await page.getByTestId('resume').click();
  await expectFinished(page);
  expect(await chartPoints(page, 'chart-accuracy')).toBeGreaterThanOrEqual(2);
  expect(await chartPoints(page, 'chart-lr')).toBe(12);
  await expect(page.getByTestId('checkpoint-info')).toContainText('step 12');

  // The two files PEFT loads: keys and shapes follow the targets picked in the tree.
  const weights = safetensorsShapes(await download(page, 'download-weights'));
  const features = conv1dFeatures(config);
  const expected: Record<string, number[]> = {};
  for (const m of matched) {
    const [inF, outF] = features[m.split('.').slice(-2).join('.')];
    expected[`base_model.model.${m}.lora_A.weight`] = [4, inF];
    expected[`base_model.model.${m}.lora_B.weight`] = [outF, 4];
  }
  expect(weights).toEqual(expected);
  const cfg = JSON.parse((await download(page, 'download-config')).toString('utf8'));
  expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 16, base_model_name_or_path: 'sotu-gpt2' });
  expect([...cfg.target_modules].sort()).toEqual(['0.attn.c_proj', 'c_attn']);

  const zip = unzipSync(new Uint8Array(await download(page, 'download-zip')));
  expect(Object.keys(zip).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'training_curves.svg']);
  expect(strFromU8(zip['README.md'])).toContain('PeftModel.from_pretrained');

  // Same prompt, adapter on and off: greedy decoding, so any difference is the adapter's.
  await page.getByTestId('playground-input').fill('The Congress');
  await page.getByTestId('playground-run').click();
  await expect(page.getByTestId('gen-on')).toBeVisible({ timeout: 60_000 });
  const on = await page.getByTestId('gen-on').textContent();
  const off = await page.getByTestId('gen-off').textContent();
  expect(on).not.toEqual(off);
});

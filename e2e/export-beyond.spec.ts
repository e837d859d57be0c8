/**
 * Export beyond the tab, through the studio: train a few LoRA steps, then Merge and download (F32, sharded) and
 * check the merged folder gives the unmerged adapter's logits; Download GGUF adapter and parse it; Export as
 * Python project and compile its train.py.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Download } from '@playwright/test';
import { gguf } from '@huggingface/gguf';
import { unzipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { buildModel } from '../src/engine/models';
import { download, expectFinished, openStudio, setTinyArgs } from './helpers';

test('merge and download, GGUF adapter and Python project from the studio', async ({ page }) => {
  await openStudio(page);
  await page.getByTestId('field-r').fill('4');
  await setTinyArgs(page, { steps: 3, evalSteps: 3, maxLength: 32, batch: 2, lr: 0.01 });
  await page.getByTestId('start').click();
  await expectFinished(page);
  const adapterDir = mkdtempSync(join(tmpdir(), 'e2e-adapter-'));
  writeFileSync(join(adapterDir, 'adapter_model.safetensors'), await download(page, 'download-weights'));
  writeFileSync(join(adapterDir, 'adapter_config.json'), await download(page, 'download-config'));

  // Merge: F32 in 5 MB shards, each file downloaded from OPFS.
  const merged = mkdtempSync(join(tmpdir(), 'e2e-merged-'));
  const downloads: Download[] = [];
  page.on('download', (d) => downloads.push(d));
  if (await page.getByTestId('merge-pick').count()) await page.getByTestId('merge-pick').uncheck();
  await page.getByTestId('merge-dtype').selectOption('F32');
  await page.getByTestId('merge-shard').fill('5MB');
  await page.getByTestId('merge-download').click();
  await expect(page.getByTestId('merge-result')).toContainText('model.safetensors.index.json', { timeout: 120_000 });
  const files = (await page.getByTestId('merge-result').textContent())!.replace(/^.*?: /, '').replace(/ downloaded\.$/, '').split(', ');
  await expect.poll(() => downloads.length, { timeout: 60_000 }).toBe(files.length);
  for (const d of downloads) await d.saveAs(join(merged, d.suggestedFilename()));
  page.removeAllListeners('download');
  expect(files).toContain('config.json');
  expect(files).toContain('tokenizer.json');
  expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);

  // The merged folder, loaded as a plain model, gives the adapter's logits.
  await useNodeBackend('cpu');
  const builtin = join('public', 'models', 'sotu-gpt2');
  const base = loadModelDir(builtin);
  const plain = buildModel(base.config, base.tensors);
  const peft = loadAdapter(plain, { config: readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(adapterDir, 'adapter_model.safetensors'))) });
  const m = loadModelDir(merged);
  const mergedModel = buildModel(m.config, m.tensors);
  const ids = tf.tensor2d([[5, 17, 300, 42, 7, 99]], [1, 6], 'int32');
  const a = peft.forward({ inputIds: ids }).dataSync();
  const b = mergedModel.forward({ inputIds: ids }).dataSync();
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  expect(diff).toBeLessThan(1e-4);

  // GGUF adapter + Modelfile.
  const zip = unzipSync(new Uint8Array(await download(page, 'gguf-download')));
  expect(Object.keys(zip).sort()).toEqual(['Modelfile', 'adapter.gguf']);
  const ggufPath = join(adapterDir, 'adapter.gguf');
  writeFileSync(ggufPath, zip['adapter.gguf']);
  const parsed = await gguf(ggufPath, { allowLocalFile: true });
  const meta = parsed.metadata as unknown as Record<string, unknown>;
  expect(meta['general.architecture']).toBe('gpt2');
  expect(meta['adapter.type']).toBe('lora');
  expect(parsed.tensorInfos.map((t) => t.name)).toContain('blk.0.attn_qkv.weight.lora_a');
  expect(new TextDecoder().decode(zip.Modelfile)).toMatch(/^ADAPTER \.\/adapter\.gguf$/m);

  // Python project.
  const py = unzipSync(new Uint8Array(await download(page, 'python-export')));
  expect(Object.keys(py)).toEqual(expect.arrayContaining(['train.py', 'requirements.txt', 'README.md', 'accelerate/fsdp.yaml']));
  expect(Object.keys(py).some((k) => k.startsWith('data/'))).toBe(true);
  const trainPy = join(adapterDir, 'train.py');
  writeFileSync(trainPy, py['train.py']);
  execFileSync('python3', ['-m', 'py_compile', trainPy]);
  const text = new TextDecoder().decode(py['train.py']);
  expect(text).toContain('r=4,');
  expect(text).toContain('max_steps=3,');
  await expect(page.getByTestId('python-result')).toContainText('accelerate launch train.py');

  // The zip with the built-in model's files and a chosen base_model_name_or_path; the curves beside the README.
  await page.getByTestId('base-model-name').fill('me/sotu-gpt2');
  await page.getByTestId('zip-include-base').check();
  const az = unzipSync(new Uint8Array(await download(page, 'download-zip')));
  expect(Object.keys(az)).toEqual(expect.arrayContaining(['adapter_config.json', 'training_curves.svg', 'sotu-gpt2/config.json', 'sotu-gpt2/model.safetensors', 'sotu-gpt2/tokenizer.json']));
  expect(az['sotu-gpt2/model.safetensors'].byteLength).toBe(readFileSync(join(builtin, 'model.safetensors')).byteLength);
  expect(JSON.parse(new TextDecoder().decode(az['adapter_config.json'])).base_model_name_or_path).toBe('me/sotu-gpt2');
  const readme = new TextDecoder().decode(az['README.md']);
  expect(readme).toContain('base_id = "./sotu-gpt2"');
  expect(readme).toContain('![Training and evaluation curves](training_curves.svg)');
});

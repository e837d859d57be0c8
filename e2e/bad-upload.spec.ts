/** Bad files say what is wrong and where, and the studio keeps working with what it had. */
import { expect, test } from '@playwright/test';
import { builtinFile, openStudio, setTinyArgs } from './helpers';

test('a broken CSV and a truncated safetensors file are reported; the studio stays usable', async ({ page }) => {
  test.setTimeout(240_000);
  await openStudio(page);
  const before = await page.getByTestId('data-summary').textContent();

  // Every row is broken: an error naming file, line and row; the previous data stays in use.
  await page.getByTestId('data-file-input').setInputFiles({
    name: 'broken.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('text,label\n"one, two, three",ham,extra\n"never closed,spam\n'),
  });
  await expect(page.getByTestId('data-error')).toContainText('broken.csv line 2 (row 1): expected 2 fields (text, label), found 3');
  await expect(page.getByTestId('data-error')).toContainText('Still using');
  await expect(page.getByTestId('data-summary')).toHaveText(before!);

  // Some rows are broken: they are skipped and listed by line.
  await page.getByTestId('data-file-input').setInputFiles({
    name: 'partly.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('text,label\nWe shall prevail.,0\nToo,many,fields\nThe state of the union is strong.,1\n'),
  });
  await expect(page.getByTestId('data-issues')).toContainText('partly.csv line 3 (row 2): expected 2 fields');
  await expect(page.getByTestId('data-summary')).toContainText('partly.csv');

  // A truncated weights file: the model panel says which file and why, and keeps the loaded model.
  const weights = await builtinFile(page, 'model.safetensors');
  await page.getByTestId('model-files-input').setInputFiles([
    { name: 'config.json', mimeType: 'application/json', buffer: await builtinFile(page, 'config.json') },
    { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: weights.subarray(0, Math.floor(weights.length / 2)) },
  ]);
  await expect(page.getByTestId('model-error')).toContainText('model.safetensors');
  await expect(page.getByTestId('model-error')).toContainText('Still using sotu-gpt2');
  await expect(page.getByTestId('model-status')).toContainText('sotu-gpt2');

  // The Hub goes through the same loader; offline (simulated here) it says so instead of failing silently.
  await page.context().route('https://huggingface.co/**', (route) => route.abort('internetdisconnected'));
  await page.getByLabel('Hugging Face repo id').fill('openai-community/gpt2');
  await page.getByRole('button', { name: 'Load from Hub' }).click();
  await expect(page.getByTestId('model-error')).toContainText('Could not reach https://huggingface.co');
  await expect(page.getByTestId('load-retry')).toBeVisible();
  await expect(page.getByTestId('model-status')).toContainText('sotu-gpt2');

  // Still usable: a run on the uploaded data starts, and Stop ends it with its adapter kept.
  await setTinyArgs(page, { steps: 500, evalSteps: 0, maxLength: 16, batch: 2, lr: 0.001 });
  await page.getByTestId('start').click();
  await expect(page.getByTestId('step')).toHaveText(/^[1-9]\d* \/ 500$/);
  await page.getByTestId('stop').click();
  await expect(page.getByTestId('run-state')).toHaveText('Stopped');
  await expect(page.getByTestId('checkpoint-info')).toContainText('adapter from step');
  await expect(page.getByTestId('download-weights')).toBeEnabled();
});

test('a UTF-16 CSV and a binary file are named for what they are; the selected dataset stays selected', async ({ page }) => {
  test.setTimeout(240_000);
  await openStudio(page);
  const before = await page.getByTestId('data-summary').textContent();
  const selected = await page.getByTestId('dataset-select').inputValue();
  // The dropdown neither switches to nor lists a file that failed.
  const dropdownUnchanged = async (name: string) => {
    await expect(page.getByTestId('dataset-select')).toHaveValue(selected);
    await expect(page.getByTestId('dataset-select').locator('option', { hasText: name })).toHaveCount(0);
  };

  // UTF-16 with a byte-order mark: the file is read as bytes, so the mark is seen rather than decoded away.
  await page.getByTestId('data-file-input').setInputFiles({
    name: 'utf16-bom.csv',
    mimeType: 'text/csv',
    buffer: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('text,label\nWe shall prevail.,0\n', 'utf16le')]),
  });
  await expect(page.getByTestId('data-error')).toContainText('utf16-bom.csv');
  await expect(page.getByTestId('data-error')).toContainText('UTF-16');
  await expect(page.getByTestId('data-summary')).toHaveText(before!);
  await dropdownUnchanged('utf16-bom.csv');

  // UTF-16 LE without a byte-order mark.
  await page.getByTestId('data-file-input').setInputFiles({
    name: 'utf16.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('text,label\nWe shall prevail.,0\nThe state of the union is strong.,1\n', 'utf16le'),
  });
  await expect(page.getByTestId('data-error')).toContainText('utf16.csv looks like UTF-16 LE text without a byte-order mark (every other byte is NUL); save it as UTF-8');
  await expect(page.getByTestId('data-error')).toContainText('Still using');
  await expect(page.getByTestId('data-summary')).toHaveText(before!);
  await dropdownUnchanged('utf16.csv');

  // A binary file picked by mistake.
  await page.getByTestId('data-file-input').setInputFiles({
    name: 'weights.jsonl',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from([0x7b, 0x22, 0x74, 0x00, 0x01, 0x02, 0xff, 0x00, 0x10]),
  });
  await expect(page.getByTestId('data-error')).toContainText('weights.jsonl looks like a binary file, not text (NUL byte at byte 3)');
  await expect(page.getByTestId('data-error')).toContainText('Still using');
  await expect(page.getByTestId('data-summary')).toHaveText(before!);
  await dropdownUnchanged('weights.jsonl');
});

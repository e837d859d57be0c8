/**
 * The project survives a reload: method settings, targets, method, learning rate, steps, a dataset and an
 * uploaded CSV with its column mapping come back without a re-upload. Reset to defaults puts training and method
 * settings back (model, targets and data stay); New project forgets the saved project (the stored upload stays
 * listed). No training run: only setup and reloads.
 */
import { expect, test, type Page } from '@playwright/test';
import { openStudio } from './helpers';

/** After a reload: backend up, model downloaded, data read. */
async function ready(page: Page): Promise<void> {
  await expect(page.locator('.pill')).toContainText('backend:', { timeout: 90_000 });
  await expect(page.getByTestId('model-status')).toContainText('sotu-gpt2', { timeout: 90_000 });
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready', { timeout: 90_000 });
  await expect(page.getByTestId('data-summary')).toBeVisible();
}

const CSV = 'prompt,response\nWhat is the state of the union?,It is strong.\nWho speaks?,The president.\nWhen?,Every year.\n';

test('a non-default project comes back after a reload; Reset to defaults and New project', async ({ page }) => {
  test.setTimeout(240_000);
  await openStudio(page);
  const line = page.getByTestId('trainable-line');

  // LoRA r and the targets, then another method with its own learning rate, and fewer steps.
  await page.getByTestId('field-r').fill('4');
  await page.getByTestId('target-modules-input').fill('c_attn, c_proj');
  await expect(page.getByTestId('module-tree')).toHaveAttribute('data-matched', /attn\.c_proj/);
  await expect(line).toContainText('trainable params:');
  await page.getByTestId('method').selectOption('IA3');
  await page.getByTestId('lr').fill('0.0042');
  await page.getByTestId('max-steps').fill('7');

  // A built-in dataset, then an uploaded CSV with a column mapping of its own.
  await page.getByTestId('dataset-select').selectOption('spam');
  await expect(page.getByTestId('data-summary')).toContainText('SpamAssassin');
  await page.getByTestId('data-file-input').setInputFiles({ name: 'mine.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  await expect(page.getByTestId('data-summary')).toContainText('mine.csv');
  await expect(page.getByTestId('upload-row')).toHaveAttribute('data-name', 'mine.csv');
  await page.getByLabel('columns').selectOption('text');
  await page.getByLabel('text', { exact: true }).selectOption('response');
  // The editor shows the mapping the data was read with: back from the worker.
  await expect(page.getByLabel('text', { exact: true })).toHaveValue('response');
  await expect(page.getByTestId('storage-usage')).toContainText(/^Storage: .+ of .+ used/);

  await page.reload();
  await ready(page);
  await expect(page.getByTestId('method')).toHaveValue('IA3');
  await expect(page.getByTestId('lr')).toHaveValue('0.0042');
  await expect(page.getByTestId('max-steps')).toHaveValue('7');
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_attn, c_proj');
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText('Uploaded: mine.csv');
  await expect(page.getByTestId('data-summary')).toContainText('mine.csv');
  await expect(page.getByLabel('columns')).toHaveValue('text');
  await expect(page.getByLabel('text', { exact: true })).toHaveValue('response');
  // LoRA's own settings were kept too; the learning rate set by hand stays across the switch.
  await page.getByTestId('method').selectOption('LORA');
  await expect(page.getByTestId('field-r')).toHaveValue('4');
  await expect(page.getByTestId('lr')).toHaveValue('0.0042');

  // Reset to defaults: training and method settings; the model, targets and data stay.
  await page.getByTestId('reset-defaults').click();
  await expect(page.getByTestId('lr')).toHaveValue('0.0002');
  await expect(page.getByTestId('max-steps')).toHaveValue('60');
  await expect(page.getByTestId('field-r')).toHaveValue('8');
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_attn, c_proj');
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText('Uploaded: mine.csv');

  // New project, after its confirm: built-in model, default dataset and targets; nothing comes back on a reload.
  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('new-project').click();
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_attn');
  await expect(page.getByTestId('dataset-select')).toHaveValue('sotu-fdr');
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('method')).toHaveValue('LORA');
  await expect(page.getByTestId('field-r')).toHaveValue('8');
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_attn');
  await expect(page.getByTestId('dataset-select')).toHaveValue('sotu-fdr');
  // The upload is still kept in the browser, one click away.
  await expect(page.getByTestId('dataset-select').locator('option', { hasText: 'Uploaded: mine.csv' })).toHaveCount(1);
});

test('a worker that crashed is restarted with the project as it was', async ({ page }) => {
  test.setTimeout(180_000);
  await openStudio(page);
  await page.getByTestId('target-modules-input').fill('c_proj');
  await expect(page.getByTestId('module-tree')).toHaveAttribute('data-matched', /mlp\.c_proj/);
  await page.getByTestId('max-steps').fill('9');

  // The worker's script fails to load on the next page load: the worker is reported crashed, nothing hangs.
  const script = /\/assets\/worker-(?!client)[^/]+\.js$/;
  await page.route(script, (r) => r.abort());
  await page.reload();
  await expect(page.getByTestId('worker-crash')).toContainText('The training worker crashed:');
  await expect(page.locator('.pill')).toHaveText('no backend');
  await page.unroute(script);

  await page.getByTestId('restart-worker').click();
  await ready(page);
  await expect(page.getByTestId('worker-crash')).toHaveCount(0);
  await expect(page.getByTestId('target-modules-input')).toHaveValue('c_proj');
  await expect(page.getByTestId('max-steps')).toHaveValue('9');
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
});

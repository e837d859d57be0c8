/**
 * Push to the Hub from the studio: train a few LoRA steps, push the adapter to the stand-in Hub (its write
 * endpoints, test/support/hub-write.ts) and read the files back from it; a second push to the same name offers
 * "Upload into it", and a bad token says so.
 */
import { expect, test } from '@playwright/test';
import { download, expectFinished, openStudio, setTinyArgs } from './helpers';

const HUB = `http://127.0.0.1:${process.env.E2E_HUB_PORT ?? 5199}`;
const TOKEN = 'hf_write_token';

test('push the trained adapter to the Hub and see the files arrive there', async ({ page }) => {
  await openStudio(page);
  await page.getByTestId('hub-settings').locator('summary').click();
  await page.getByTestId('hub-url-input').fill(HUB);
  await page.getByTestId('field-r').fill('4');
  await setTinyArgs(page, { steps: 2, evalSteps: 2, maxLength: 32, batch: 2, lr: 0.01 });
  await page.getByTestId('start').click();
  await expectFinished(page);

  const repo = `e2e/pushed-${Date.now()}`;
  await page.getByTestId('push-repo').fill(repo);
  await page.getByTestId('push-token').fill('hf_not_a_token');
  await page.getByTestId('push-button').click();
  await expect(page.getByTestId('push-error')).toContainText('rejected the access token');

  await page.getByTestId('push-token').fill(TOKEN);
  await page.getByTestId('push-button').click();
  await expect(page.getByTestId('push-result')).toContainText(`Created ${repo}`);
  await expect(page.getByTestId('push-result').locator('a')).toHaveAttribute('href', `${HUB}/${repo}`);

  // What arrived is what Export downloads, byte for byte; private: hidden without the token.
  const weights = await download(page, 'download-weights');
  const get = (file: string, token: string | null = TOKEN) => fetch(`${HUB}/${repo}/resolve/main/${file}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  expect(Buffer.from(await (await get('adapter_model.safetensors')).arrayBuffer()).equals(weights)).toBe(true);
  expect(await (await get('adapter_config.json')).text()).toBe((await download(page, 'download-config')).toString('utf8'));
  expect(await (await get('README.md')).text()).toMatch(/library_name: peft[\s\S]*for 2 optimizer steps[\s\S]*eval_loss/);
  expect((await get('README.md', null)).status).toBe(401);

  await page.getByTestId('push-button').click();
  await expect(page.getByTestId('push-error')).toContainText('already exists');
  await page.getByTestId('push-into-existing').click();
  await expect(page.getByTestId('push-result')).toContainText(`Uploaded into ${repo}`);

  // The merged model: merged in the worker into the browser's storage, then uploaded from there.
  const mergedRepo = `${repo}-merged`;
  await page.getByTestId('push-what').selectOption('merged');
  await page.getByTestId('push-repo').fill(mergedRepo);
  await page.getByTestId('push-button').click();
  await expect(page.getByTestId('push-result')).toContainText(`Created ${mergedRepo}`, { timeout: 120_000 });
  await expect(page.getByTestId('push-result')).toContainText('model.safetensors');
  const getM = (file: string) => fetch(`${HUB}/${mergedRepo}/resolve/main/${file}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  expect(((await (await getM('config.json')).json()) as { architectures: string[] }).architectures).toEqual(['GPT2LMHeadModel']);
  expect((await getM('tokenizer.json')).status).toBe(200);
  const weightsMerged = Buffer.from(await (await getM('model.safetensors')).arrayBuffer());
  expect(weightsMerged.byteLength).toBeGreaterThan(1e6);
  const card = await (await getM('README.md')).text();
  expect(card).toMatch(/library_name: transformers[\s\S]*"merged"[\s\S]*sotu-gpt2 with a merged LoRA adapter/);
});

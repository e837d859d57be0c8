/** Feedback a new user reads: targets that match nothing explained in words, PEFT's text kept as a detail. */
import { expect, test } from '@playwright/test';
import { openStudio, setTinyArgs, startAndWait } from './helpers';

test('targets that match nothing say what to do, with PEFT\'s text as the detail', async ({ page }) => {
  await openStudio(page);
  await page.getByTestId('target-modules-input').fill('c_atn');
  await expect(page.getByTestId('targets-error-summary')).toHaveText(
    "None of the names (c_atn) is a module of this model. Check their spelling against the tree (a name matches the end of a module's name, e.g. c_attn), or tick modules in the tree below or use a quick pick.",
  );
  await expect(page.getByTestId('targets-error-peft')).toBeHidden();
  await page.getByText('PEFT says').click();
  await expect(page.getByTestId('targets-error-peft')).toHaveText("Target modules {'c_atn'} not found in the base model. Please check the target modules and try again.");
  await expect(page.getByTestId('start')).toBeDisabled();
  // Emptied: the quick picks and the tree are the way out.
  await page.getByTestId('target-modules-input').fill('');
  await expect(page.getByTestId('targets-error-summary')).toHaveText('No modules are targeted yet. Tick modules in the tree below or use a quick pick (for example "all c_attn").');
  await page.getByRole('button', { name: /^all c_attn/ }).click();
  await expect(page.getByTestId('targets-error')).toHaveCount(0);
  await expect(page.getByTestId('start')).toBeEnabled();
});

test('a SEQ_CLS run shows the confusion matrix and per-class scores of the validation split', async ({ page }) => {
  test.setTimeout(200_000);
  await openStudio(page);
  await page.getByRole('radio', { name: /SEQ_CLS/ }).click();
  await expect(page.getByTestId('labels-line')).toContainText('0 = ham, 1 = spam');
  await setTinyArgs(page, { steps: 2, evalSteps: 2, maxLength: 32, batch: 4, lr: 0.005 });
  await startAndWait(page);
  const cm = page.getByTestId('confusion');
  await expect(cm).toHaveAttribute('data-step', '2');
  await expect(cm.locator('.confusion-matrix thead th')).toHaveText(['true \\ predicted', 'ham', 'spam']);
  const cell = async (t: number, p: number) => Number(await cm.locator(`[data-cell="${t}-${p}"]`).textContent());
  const rows = page.getByTestId('class-scores').locator('tbody tr');
  await expect(rows).toHaveCount(2);
  // Each class's support is its row of the matrix; recall is the diagonal over it.
  for (const t of [0, 1]) {
    const support = Number(await rows.nth(t).locator('td').nth(3).textContent());
    expect((await cell(t, 0)) + (await cell(t, 1))).toBe(support);
    const recall = support ? (100 * (await cell(t, t))) / support : 0;
    await expect(rows.nth(t).locator('td').nth(1)).toHaveText(`${recall.toFixed(1)}%`);
  }
  // The run history keeps it: the run's row shows the same matrix.
  const run = page.getByTestId('run-row').first();
  await run.getByTestId('run-confusion-toggle').click();
  const kept = page.getByTestId('run-confusion');
  await expect(kept).toHaveAttribute('data-step', '2');
  for (const t of [0, 1]) for (const p of [0, 1]) await expect(kept.locator(`[data-cell="${t}-${p}"]`)).toHaveText(String(await cell(t, p)));
});

test('a run that does not learn says what to try', async ({ page }) => {
  test.setTimeout(200_000);
  await openStudio(page);
  // A learning rate of 1e-9 leaves the loss where it was: three evaluations after step 0, all flat.
  await setTinyArgs(page, { steps: 3, evalSteps: 1, maxLength: 32, batch: 2, lr: 1e-9 });
  // Every text the evaluation's progress showed (an evaluation can be over between two polls).
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { evalProgress: string[] }).evalProgress = seen;
    new MutationObserver(() => {
      const t = document.querySelector('[data-testid="eval-progress"]')?.textContent;
      if (t && seen[seen.length - 1] !== t) seen.push(t);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await startAndWait(page);
  const seen = await page.evaluate(() => (window as unknown as { evalProgress: string[] }).evalProgress);
  expect(seen.length).toBeGreaterThan(0);
  const counts = seen.map((t) => /^batch (\d+) \/ (\d+)$/.exec(t));
  expect(counts.every((m) => m !== null), seen.join(', ')).toBe(true);
  // One total (the validation rows in batches of 2), every count within it.
  const total = Number(counts[0]![2]);
  expect(total).toBeGreaterThan(1);
  for (const m of counts) {
    expect(Number(m![2])).toBe(total);
    expect(Number(m![1])).toBeLessThanOrEqual(total);
  }
  await expect(page.getByTestId('eval-progress')).toHaveCount(0);
  const hint = page.getByTestId('learning-hint');
  await expect(hint).toContainText(/After 3 evaluations the eval loss (stayed flat|went up)/);
  await expect(hint).toContainText('Raise the learning rate');
  await expect(hint).toContainText('Quick demo preset');
  // Step pace and the evaluation's own time are on show.
  await expect(page.getByTestId('ms-per-step')).toHaveText(/^[\d,]+$/);
  await expect(page.getByTestId('eval-time')).toHaveText(/^\d+\.\d s$/);
  // Switching the task marks the results on show as the previous run's.
  await expect(page.getByTestId('stale-results')).toHaveCount(0);
  const notes = ['stale-results', 'export-stale', 'push-stale', 'playground-stale'];
  for (const id of notes) await expect(page.getByTestId(id)).toHaveCount(0);
  await page.getByRole('radio', { name: /SEQ_CLS/ }).click();
  await expect(page.getByTestId('stale-results')).toContainText('These results are from the previous run (CAUSAL_LM · LORA · sotu-gpt2); the task changed since.');
  // The adapter on offer, the one Push would upload and the one the playground tries say so too.
  await expect(page.getByTestId('export-stale')).toContainText('This adapter is from the previous run (CAUSAL_LM · LORA · sotu-gpt2); the task changed since.');
  await expect(page.getByTestId('push-stale')).toContainText('The adapter this pushes is from the previous run (CAUSAL_LM · LORA · sotu-gpt2)');
  await expect(page.getByTestId('playground-stale')).toContainText('The adapter tried here, and its outputs below, are from the previous run (CAUSAL_LM · LORA · sotu-gpt2); the task changed since.');
  await page.getByRole('radio', { name: /CAUSAL_LM/ }).click();
  for (const id of notes) await expect(page.getByTestId(id)).toHaveCount(0);
  // A method switch too.
  await page.getByTestId('method').selectOption('IA3');
  await expect(page.getByTestId('export-stale')).toContainText('the method changed since');
  await expect(page.getByTestId('playground-stale')).toContainText('(CAUSAL_LM · LORA · sotu-gpt2); the method changed since');
  await page.getByTestId('method').selectOption('LORA');
  for (const id of notes) await expect(page.getByTestId(id)).toHaveCount(0);
});

test('form help is visible and linked to its field; a refused value says why', async ({ page }) => {
  await openStudio(page);
  const evalSteps = page.getByTestId('eval-steps');
  await expect(evalSteps).toHaveAccessibleDescription('0: only at the end');
  const id = (await evalSteps.getAttribute('aria-describedby'))!;
  await expect(page.locator(`[id="${id}"]`)).toBeVisible();
  await evalSteps.fill('-1');
  await expect(evalSteps).toHaveAttribute('aria-invalid', 'true');
  await expect(evalSteps).toHaveAccessibleDescription('must be at least 0 0: only at the end');
  await evalSteps.fill('2');
  await expect(evalSteps).toHaveAccessibleDescription('0: only at the end');
  // The whole studio at 1280x800, for a look that nothing is cut off (written under the ignored test-results/).
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: 'test-results/ux-1280x800.png', fullPage: true });
  await page.locator('[data-panel="targets"]').screenshot({ path: 'test-results/ux-targets-1280x800.png' });
});

/**
 * Runs survive: a run checkpointed at its evaluations is cut off by a reload mid-run, offered as "Resume run
 * from step K", resumed to the end as the same run (the loss chart is one series 1..N, no gap or repeat), and
 * learns. A second, uninterrupted run with the same seed gives the same losses after step K; the history lists
 * both, overlays their curves and downloads a run's metrics.jsonl with a row per step and per evaluation.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { expectFinished, openStudio, setTinyArgs } from './helpers';

const STEPS = 24;
const EVAL = 4;

async function ready(page: Page): Promise<void> {
  await expect(page.locator('.pill')).toContainText('backend:', { timeout: 90_000 });
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready', { timeout: 90_000 });
  await expect(page.getByTestId('data-summary')).toBeVisible();
}

type Row = { step: number; loss?: number; eval_loss?: number };
const rowsOf = (b: Buffer): Row[] => b.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);

test('a run cut off by a reload resumes from its checkpoint as the same run; history overlays and downloads', async ({ page }) => {
  test.setTimeout(240_000);
  // Leaving mid-run asks first (beforeunload): this test means to.
  page.on('dialog', (d) => void d.accept());
  await openStudio(page);
  await setTinyArgs(page, { steps: STEPS, evalSteps: EVAL, maxLength: 32, batch: 4, lr: 0.01 });
  await expect(page.getByTestId('runs-empty')).toBeVisible();

  await page.getByTestId('start').click();
  // The first checkpoint (at the first evaluation) is in the browser: the history row says so.
  const row = page.getByTestId('run-row').first();
  await expect(row).toHaveAttribute('data-latest-step', /^[1-9]\d*$/, { timeout: 120_000 });
  const runId = await row.getAttribute('data-run');
  expect(await page.getByTestId('run-state').textContent()).toBe('Training');
  await page.reload();
  await ready(page);

  // The run was cut off: offered for resume from its newest checkpoint.
  const offer = page.getByTestId('resume-offer');
  await expect(offer).toBeVisible();
  await expect(offer).toHaveAttribute('data-run', runId!);
  const k = Number(await offer.getAttribute('data-step'));
  expect(k % EVAL).toBe(0);
  expect(k).toBeGreaterThanOrEqual(EVAL);
  expect(k).toBeLessThan(STEPS);
  await expect(page.getByTestId('resume-run')).toHaveText(`Resume run from step ${k}`);
  await expect(page.locator(`[data-testid=run-row][data-run="${runId}"]`)).toHaveAttribute('data-status', 'interrupted');

  // Other data (another seed splits it otherwise) is refused by the button with what to change; nothing is lost.
  await page.getByTestId('seed').fill('7');
  // The data is read again with the new seed (after a short debounce); Resume waits for it.
  await page.waitForTimeout(800);
  await expect(page.getByTestId('resume-run')).toBeEnabled();
  await page.getByTestId('resume-run').click();
  await expect(page.getByTestId('resume-error')).toContainText('seed 42 (now 7)');
  await expect(page.getByTestId('run-state')).not.toHaveText('Training');
  await page.getByTestId('seed').fill('42');
  await page.waitForTimeout(800);
  await expect(page.getByTestId('resume-run')).toHaveText(`Resume run from step ${k}`);
  await expect(page.getByTestId('resume-run')).toBeEnabled();

  await page.getByTestId('resume-run').click();
  await expectFinished(page);
  // One continuous curve: steps 1..N, the first K from the checkpoint's log_history.
  const steps = (await page.getByTestId('chart-loss').getAttribute('data-steps'))!.split(',').map(Number);
  expect(steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  await expect(page.getByTestId('resume-offer')).toHaveCount(0);
  const resumedRow = page.locator(`[data-testid=run-row][data-run="${runId}"]`);
  await expect(resumedRow).toHaveAttribute('data-status', 'completed');
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('best-step')).toHaveText(/^\d+$/);

  // Its metrics.jsonl: a row per step and per evaluation (every EVAL steps, the last one included); it learned.
  const resumed = rowsOf(await downloadFrom(page, resumedRow.getByTestId('run-download-metrics')));
  const train = resumed.filter((r) => r.loss !== undefined);
  expect(train.map((r) => r.step)).toEqual(steps);
  expect(resumed.filter((r) => r.eval_loss !== undefined).map((r) => r.step)).toEqual(Array.from({ length: STEPS / EVAL }, (_, i) => (i + 1) * EVAL));
  expect(resumed).toHaveLength(STEPS + STEPS / EVAL);
  // It learned: the final eval loss is below the first (the same rows each time; single train steps are noisy).
  const evals = resumed.filter((r) => r.eval_loss !== undefined).map((r) => r.eval_loss!);
  expect(evals[evals.length - 1]).toBeLessThan(evals[0]);

  // A second run, uninterrupted, with the same settings and seed: the same losses after step K. It loads the
  // best model at the end, so Export offers the best checkpoint's adapter.
  await page.getByTestId('load-best').check();
  await page.getByTestId('start').click();
  await expectFinished(page);
  await expect(page.getByTestId('checkpoint-best')).toContainText('best checkpoint (eval_loss');
  const bestStep = await page.getByTestId('best-step').textContent();
  await expect(page.getByTestId('checkpoint-info')).toContainText(`step ${bestStep}`);
  await expect(page.getByTestId('run-row')).toHaveCount(2);
  const second = page.getByTestId('run-row').first();
  const secondId = await second.getAttribute('data-run');
  expect(secondId).not.toBe(runId);
  const whole = rowsOf(await downloadFrom(page, second.getByTestId('run-download-metrics'))).filter((r) => r.loss !== undefined);
  expect(whole).toHaveLength(STEPS);
  for (let i = k; i < STEPS; i++) expect(train[i].loss!).toBeCloseTo(whole[i].loss!, 4);

  // Overlay: both runs' loss (24 points) and eval-loss curves on one chart.
  for (const r of await page.getByTestId('run-select').all()) await r.check();
  const overlay = page.getByTestId('runs-overlay');
  await expect(overlay).toHaveAttribute('data-series', new RegExp(`${secondId}:${STEPS}:${STEPS / EVAL}`));
  await expect(overlay).toHaveAttribute('data-series', new RegExp(`${runId}:${STEPS}:${STEPS / EVAL}`));
  await expect(overlay.locator('.recharts-line')).toHaveCount(4);

  // The adapter of a run: PEFT's two files (with a README) from its latest checkpoint.
  const zip = await downloadFrom(page, resumedRow.getByTestId('run-download-adapter'));
  expect(zip.subarray(0, 2).toString('latin1')).toBe('PK');

  // Deleting a run removes it (and its checkpoints) for good.
  page.removeAllListeners('dialog');
  page.once('dialog', (d) => void d.accept());
  await second.getByTestId('run-delete').click();
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row').first()).toHaveAttribute('data-run', runId!);
});

async function downloadFrom(page: Page, button: ReturnType<Page['getByTestId']>): Promise<Buffer> {
  const [d] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return readFileSync(await d.path());
}

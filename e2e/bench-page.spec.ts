/**
 * bench.html (npm run bench:browser's page) drives the studio's own worker: a tiny LoRA training step on wasm,
 * in the cross-origin isolated page (threaded wasm build, the studio's thread count), with a finite loss and a
 * measured speed.
 */
import { expect, test } from '@playwright/test';
import { defaultWasmThreads } from '../src/engine/backend';
import { PRESETS, type BenchShape } from '../src/engine/bench';

test('bench page measures a training step on wasm through the worker', async ({ page }) => {
  test.setTimeout(90_000);
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto('/bench.html');
  await page.waitForFunction(() => window.peftBenchReady === true);
  const shape: BenchShape = { ...PRESETS.tiny, batch: 4, seq: 32, r: 8 };
  const reply = await page.evaluate((s) => window.peftBench('wasm', s, { steps: 1, matmulRuns: 1 }), shape);
  expect(reply.backend).toBe('wasm');
  expect(reply.page.crossOriginIsolated).toBe(true);
  const r = reply.result;
  expect(r.details.threads).toBe(true);
  // The studio's thread count, not tfjs's default of half the cores.
  expect(r.details.threads_count).toBe(defaultWasmThreads(reply.page.hardwareConcurrency));
  // A causal-LM loss of a random model over an 8192-token vocabulary: about ln(8192) = 9.01.
  expect(Number.isFinite(r.loss_first_exact)).toBe(true);
  expect(r.loss_first_exact).toBeGreaterThan(8);
  expect(r.loss_first_exact).toBeLessThan(10);
  expect(r.tokens_per_sec).toBeGreaterThan(0);
  expect(r.step_ms).toHaveLength(1);
  expect(r.peak_heap_bytes).toBeGreaterThan(0);
  expect(r.matmul_gflops).toBeGreaterThan(0);
});

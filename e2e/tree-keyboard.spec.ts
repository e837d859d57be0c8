/** The module tree driven by keyboard only: one tab stop, arrows, Home/End, type-ahead, Space toggles a target. */
import { expect, test } from '@playwright/test';
import { openStudio } from './helpers';

test('module tree works with the keyboard alone', async ({ page }) => {
  await openStudio(page);
  const rows = page.getByTestId('module-tree-rows');
  // One tab stop: exactly one row has tabindex 0, and no checkbox or twisty inside is tabbable.
  await expect(rows.locator('[role="treeitem"][tabindex="0"]')).toHaveCount(1);
  await expect(rows.locator('input[tabindex="0"], button[tabindex="0"]')).toHaveCount(0);
  await rows.locator('[role="treeitem"][tabindex="0"]').focus();
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-module'));
  expect(await focused()).toBe('');
  const root = rows.locator('[data-module=""]');
  await expect(root).toHaveAttribute('aria-level', '1');
  await expect(root).toHaveAttribute('aria-expanded', 'true');

  // Down goes to the first child, "transformer" (GPT-2: transformer, lm_head under the model).
  await page.keyboard.press('ArrowDown');
  expect(await focused()).toBe('transformer');
  const tr = rows.locator('[data-module="transformer"]');
  await expect(tr).toHaveAttribute('aria-level', '2');
  await expect(tr).toHaveAttribute('aria-posinset', '1');
  await expect(tr).toHaveAttribute('aria-setsize', '2');
  // Left on an open node collapses it; Left again goes to the parent; Right expands, Right again enters.
  await page.keyboard.press('ArrowLeft');
  await expect(tr).toHaveAttribute('aria-expanded', 'false');
  await page.keyboard.press('ArrowLeft');
  expect(await focused()).toBe('');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowRight');
  await expect(tr).toHaveAttribute('aria-expanded', 'true');
  await page.keyboard.press('ArrowRight');
  expect(await focused()).toBe('transformer.wte');
  // End is the last visible row (lm_head), Home the model.
  await page.keyboard.press('End');
  expect(await focused()).toBe('lm_head');
  await page.keyboard.press('Home');
  expect(await focused()).toBe('');

  // Type-ahead to the first c_attn (layer 0 is open by default), then Space targets it alone.
  await page.keyboard.type('c_a');
  expect(await focused()).toBe('transformer.h.0.attn.c_attn');
  const cAttn = rows.locator('[data-module="transformer.h.0.attn.c_attn"]');
  const before = await cAttn.getAttribute('aria-selected');
  await page.keyboard.press('Space');
  await expect(cAttn).toHaveAttribute('aria-selected', before === 'true' ? 'false' : 'true');
  await expect(page.getByTestId('trainable-line')).toContainText('trainable params:');
  // Focus stayed in the tree on the same row.
  expect(await focused()).toBe('transformer.h.0.attn.c_attn');
  await page.keyboard.press('Space');
  await expect(cAttn).toHaveAttribute('aria-selected', before ?? 'false');
});

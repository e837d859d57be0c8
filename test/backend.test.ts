import { describe, expect, it } from 'vitest';
import { defaultWasmThreads } from '../src/engine/backend';

describe('defaultWasmThreads', () => {
  it('uses every core on small machines, half beyond four, at most eight', () => {
    expect([1, 2, 3, 4].map(defaultWasmThreads)).toEqual([1, 2, 3, 4]);
    expect([6, 8, 12, 16, 32, 64].map(defaultWasmThreads)).toEqual([4, 4, 6, 8, 8, 8]);
  });
  it('treats a missing or odd core count as one core', () => {
    expect(defaultWasmThreads(0)).toBe(1);
    expect(defaultWasmThreads(Number.NaN)).toBe(1);
    expect(defaultWasmThreads(2.7)).toBe(2);
  });
});

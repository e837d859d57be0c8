import { describe, expect, it } from 'vitest';
import { addPredictions, emptyCounts, perClass } from '../src/engine/train/metrics';

describe('confusion matrix and per-class scores', () => {
  it('three classes, counted by hand', () => {
    // true:  0 0 0 1 1 2 2 2 2 1
    // pred:  0 1 0 1 2 2 2 0 2 1
    const c = emptyCounts(3);
    addPredictions(c, [0, 1, 0, 1, 2, 2, 2, 0, 2, 1], [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]);
    expect(c.confusion).toEqual([
      [2, 1, 0],
      [0, 2, 1],
      [1, 0, 3],
    ]);
    const s = perClass(c);
    // class 0: tp 2, predicted 3, support 3 -> p 2/3, r 2/3, f1 2/3
    expect(s[0].precision).toBeCloseTo(2 / 3, 12);
    expect(s[0].recall).toBeCloseTo(2 / 3, 12);
    expect(s[0].f1).toBeCloseTo(2 / 3, 12);
    expect(s[0].support).toBe(3);
    // class 1: tp 2, predicted 3, support 3
    expect(s[1]).toMatchObject({ support: 3 });
    expect(s[1].precision).toBeCloseTo(2 / 3, 12);
    // class 2: tp 3, predicted 4, support 4 -> p 0.75, r 0.75
    expect(s[2].precision).toBe(0.75);
    expect(s[2].recall).toBe(0.75);
    expect(s[2].f1).toBe(0.75);
  });

  it('a class never predicted has precision 0, not NaN', () => {
    const c = emptyCounts(2);
    addPredictions(c, [0, 0, 0], [0, 1, 0]);
    const s = perClass(c);
    expect(s[1]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    // class 0: tp 2, predicted 3 -> 2/3; recall 2/2 = 1; f1 = 2*(2/3)/(5/3) = 0.8
    expect(s[0].recall).toBe(1);
    expect(s[0].f1).toBeCloseTo(0.8, 12);
  });
});

import { describe, expect, it } from 'vitest';
import { estimateRemaining } from '../src/engine/train/eta';

describe('ETA with evaluations', () => {
  it('takes evaluation time out of the step pace and adds the evaluations left', () => {
    // 10 of 60 steps in 7 s, of which evaluations at step 0 and 10 took 1 s each: 5 s / 10 = 500 ms a step.
    // Evaluations left at 20, 30, 40, 50 and the final one at 60: 5 x 1 s. ETA = 50 x 500 + 5 x 1000 = 30 s.
    const r = estimateRemaining({ step: 10, totalSteps: 60, elapsedMs: 7000, evalMs: [1000, 1000], evalEvery: 10, hasValidation: true });
    expect(r).toEqual({ msPerStep: 500, etaMs: 30_000, evalsLeft: 5 });
  });

  it('eval every 0: only the final evaluation; no validation: none', () => {
    // 4 steps in 2.5 s with a 0.5 s evaluation at step 0: 500 ms a step; 16 left + one 500 ms evaluation = 8.5 s.
    expect(estimateRemaining({ step: 4, totalSteps: 20, elapsedMs: 2500, evalMs: [500], evalEvery: 0, hasValidation: true })).toEqual({ msPerStep: 500, etaMs: 8500, evalsLeft: 1 });
    expect(estimateRemaining({ step: 4, totalSteps: 20, elapsedMs: 2000, evalMs: [], evalEvery: 5, hasValidation: false })).toEqual({ msPerStep: 500, etaMs: 8000, evalsLeft: 0 });
  });

  it('eval steps that do not divide the total: 7 of 25, every 6 -> 12, 18, 24 and the end', () => {
    const r = estimateRemaining({ step: 7, totalSteps: 25, elapsedMs: 1700, evalMs: [200, 100], evalEvery: 6, hasValidation: true });
    // (1700 - 300) / 7 = 200 ms a step; 18 x 200 + 4 x 150 = 4200.
    expect(r).toEqual({ msPerStep: 200, etaMs: 4200, evalsLeft: 4 });
  });

  it('the last step leaves nothing', () => {
    expect(estimateRemaining({ step: 25, totalSteps: 25, elapsedMs: 5000, evalMs: [100], evalEvery: 6, hasValidation: true }).etaMs).toBe(0);
  });
});

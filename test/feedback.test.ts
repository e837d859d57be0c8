import { describe, expect, it } from 'vitest';
import { learningHint, staleNote } from '../src/state/feedback';
import type { EvalMetrics } from '../src/worker/protocol';

const ev = (step: number, evalLoss: number, accuracy = 0.5): EvalMetrics => ({ step, evalLoss, accuracy });
const bl = { majorityLabel: 0, majority: 0.87, bagOfWords: 0.95, features: 100 };

describe('"didn\'t learn" hint', () => {
  it('waits for three evaluations after step 0', () => {
    expect(learningHint([ev(0, 3), ev(10, 3), ev(20, 3)], 'CAUSAL_LM', null)).toBeNull();
    expect(learningHint([], 'CAUSAL_LM', null)).toBeNull();
  });

  it('flat eval loss: 3.000 -> 2.980 is a 0.67% drop, under the 1% needed', () => {
    const h = learningHint([ev(0, 3), ev(10, 2.99), ev(20, 2.99), ev(30, 2.98)], 'CAUSAL_LM', null);
    expect(h?.reason).toBe('After 3 evaluations the eval loss stayed flat (3.000 at step 0, 2.980 at step 30).');
    expect(h?.tips[0]).toMatch(/^Raise the learning rate/);
    expect(h?.tips.some((t) => t.includes('Quick demo'))).toBe(true);
  });

  it('rising loss says so; a 2% drop is learning', () => {
    expect(learningHint([ev(0, 2), ev(5, 2.1), ev(10, 2.2), ev(15, 2.5)], 'CAUSAL_LM', null)?.reason).toBe(
      'After 3 evaluations the eval loss went up (2.000 at step 0, 2.500 at step 15).',
    );
    expect(learningHint([ev(0, 3), ev(10, 3), ev(20, 3), ev(30, 2.94)], 'CAUSAL_LM', null)).toBeNull();
  });

  it('SEQ_CLS at the majority-class rate is not learning even when the loss fell', () => {
    const evals = [ev(0, 0.9, 0.5), ev(2, 0.5, 0.86), ev(4, 0.4, 0.87), ev(6, 0.39, 0.874)];
    expect(learningHint(evals, 'SEQ_CLS', bl)?.reason).toBe(
      'After 3 evaluations the accuracy (87.4%) is no better than always predicting the majority class (87.0%).',
    );
    // 0.876 is past the 0.5-point margin over 0.87.
    expect(learningHint([...evals.slice(0, 3), ev(6, 0.39, 0.876)], 'SEQ_CLS', bl)).toBeNull();
  });
});

describe('stale results', () => {
  const a = { task: 'CAUSAL_LM', method: 'LORA', model: 'sotu-gpt2' };
  it('names the run they came from and what changed', () => {
    expect(staleNote(a, a)).toBeNull();
    expect(staleNote(null, a)).toBeNull();
    expect(staleNote(a, { ...a, task: 'SEQ_CLS', method: 'IA3' })).toBe(
      'These results are from the previous run (CAUSAL_LM · LORA · sotu-gpt2); the task and method changed since. Start training to see results for the current settings.',
    );
  });
});

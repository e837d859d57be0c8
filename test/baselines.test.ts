/** Classification baselines: the majority-class rate and a bag-of-words logistic regression, on cases worked by hand. */
import { describe, expect, it } from 'vitest';
import { BagOfWordsClassifier, classBaselines, majorityLabel, words } from '../src/engine/train/baselines';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('baselines', () => {
  it('words: lower-cased letters and digits; token ids for pre-tokenized rows', () => {
    expect(words({ text: 'FREE money!!! Call 555-0100, now.' })).toEqual(['free', 'money', 'call', '555', '0100', 'now']);
    expect(words({ text: 'Ça coûte 10€' })).toEqual(['ça', 'coûte', '10']);
    expect(words({ inputIds: [5, 7, 5] })).toEqual(['5', '7', '5']);
  });

  it('majority label: the most frequent, ties to the lowest id', () => {
    expect(majorityLabel([2, 1, 1, 2, 0])).toBe(1);
    expect(majorityLabel([3, 3, 0])).toBe(3);
    expect(majorityLabel([1, 0])).toBe(0);
  });

  it('one gradient step from zero weights equals the step worked by hand', () => {
    // vocab (sorted): bad = 0, good = 1; each row has one word, value 1. p = [0.5, 0.5] at zero weights, so the
    // mean gradient of class 0's weight on "good" is (0.5 - 1) / 2 = -0.25 and the bias gradients cancel.
    const clf = new BagOfWordsClassifier([{ text: 'good', label: 0 }, { text: 'bad', label: 1 }], 2, { minCount: 1, iterations: 1, step: 1, l2: 0 });
    expect([...clf.vocab.entries()]).toEqual([['bad', 0], ['good', 1]]);
    expect([...clf.weights[0]]).toEqual([-0.25, 0.25]);
    expect([...clf.weights[1]]).toEqual([0.25, -0.25]);
    expect([...clf.bias]).toEqual([0, 0]);
    const p = clf.predictProba({ text: 'good' });
    expect(p[0]).toBeCloseTo(sigmoid(0.5), 12);
    expect(p[1]).toBeCloseTo(1 - sigmoid(0.5), 12);
    expect(clf.predict({ text: 'bad' })).toBe(1);
    // An example with two known words has each at 1/sqrt(2): logits (0.25 - 0.25) / sqrt(2) = 0 for both classes.
    expect(clf.predictProba({ text: 'good bad' })).toEqual([0.5, 0.5]);
  });

  it('without any feature the regression learns the training class priors', () => {
    // Every word occurs once, so minCount 2 leaves no feature: only the biases train, to log(3/1) apart.
    const train = [{ text: 'a', label: 1 }, { text: 'b', label: 1 }, { text: 'c', label: 1 }, { text: 'd', label: 0 }];
    const clf = new BagOfWordsClassifier(train, 2, { iterations: 2000 });
    expect(clf.vocab.size).toBe(0);
    const p = clf.predictProba({ text: 'anything' });
    expect(p[1]).toBeCloseTo(0.75, 6);
    expect(clf.bias[1] - clf.bias[0]).toBeCloseTo(Math.log(3), 5);
  });

  it('classBaselines on a split: majority rate and a perfect regression on separable words', () => {
    const train = [
      { text: 'win cash now', label: 1 }, { text: 'cash prize win', label: 1 }, { text: 'win free cash', label: 1 },
      { text: 'meeting at noon', label: 0 }, { text: 'notes from the meeting', label: 0 },
    ];
    const validation = [{ text: 'free cash', label: 1 }, { text: 'the meeting moved', label: 0 }, { text: 'meeting today', label: 0 }, { text: 'win', label: 1 }];
    const b = classBaselines(train, validation, 2)!;
    expect(b.majorityLabel).toBe(1);
    expect(b.majority).toBe(0.5);
    expect(b.bagOfWords).toBe(1);
    // In two or more training rows: cash, meeting, win (free and the occur once).
    expect(b.features).toBe(3);
  });

  it('is deterministic and ignores the order of the training rows', () => {
    const train = Array.from({ length: 40 }, (_, i) => ({ text: `w${i % 7} x${i % 3} common`, label: i % 3 === 0 ? 1 : 0 }));
    const validation = train.slice(0, 10);
    const a = new BagOfWordsClassifier(train, 2).predictProba(validation[3]);
    const b = new BagOfWordsClassifier([...train].reverse(), 2).predictProba(validation[3]);
    for (let k = 0; k < 2; k++) expect(b[k]).toBeCloseTo(a[k], 12);
    expect(classBaselines(train, validation, 2)).toEqual(classBaselines(train, validation, 2));
  });

  it('no baselines without labelled validation rows', () => {
    expect(classBaselines([{ text: 'a', label: 0 }], [], 2)).toBeNull();
    expect(classBaselines([{ text: 'a', label: 0 }], [{ text: 'a' }], 2)).toBeNull();
  });
});

/**
 * Exact match, chrF (sacrebleu's defaults) and ROUGE-L (rouge_score's defaults) on hand-checked examples. Each
 * expected value is derived in the comment beside it from the definitions in src/engine/train/seq2seq-metrics.ts.
 */
import { describe, expect, it } from 'vitest';
import { chrF, exactMatch, rougeL, rougeLPair, rougeTokens } from '../src/engine/train/seq2seq-metrics';

describe('exact match', () => {
  it('is the share of identical strings, no normalisation', () => {
    // "a b" == "a b"; "A b" != "a b"; "x" == "x" -> 2 / 3.
    expect(exactMatch(['a b', 'A b', 'x'], ['a b', 'a b', 'x'])).toBeCloseTo(2 / 3, 12);
    expect(exactMatch([], [])).toBe(0);
  });
});

describe('chrF (char order 6, beta 2, whitespace removed)', () => {
  it('identical sentences score 100', () => {
    // Every order's precision and recall is 1 (orders past the sentence length have no n-grams and do not count).
    expect(chrF(['the cat'], ['the cat'])).toBeCloseTo(100, 10);
  });

  it('"abc" against "abd" is 700 / 18', () => {
    // 1-grams a,b,c vs a,b,d: 2 matches of 3 / 3 -> P = R = 2/3. 2-grams ab,bc vs ab,bd: 1 of 2 -> 1/2.
    // 3-grams abc vs abd: 0 of 1 -> 0. Orders 4-6 have no n-grams (eps each, not counted): effective order 3.
    // avg P = avg R = (2/3 + 1/2 + 0) / 3 = 7/18; F2 = 5 P R / (4 P + R) = P -> 100 * 7/18 = 38.888...
    expect(chrF(['abc'], ['abd'])).toBeCloseTo(700 / 18, 9);
  });

  it('whitespace is removed before counting: "a bc" equals "ab c"', () => {
    // Both become "abc", so every order matches: 100.
    expect(chrF(['a bc'], ['ab c'])).toBeCloseTo(100, 10);
  });

  it('precision and recall differ: "ab" against "abcd" weights recall (beta 2)', () => {
    // 1-grams: hyp a,b (2), ref a,b,c,d (4), 2 matches: P = 1, R = 1/2. 2-grams: hyp ab (1), ref ab,bc,cd (3),
    // 1 match: P = 1, R = 1/3. 3-grams: hyp none (P = eps), ref abc,bcd (R = 0/2 = 0), not counted; 4-grams: hyp
    // none, ref abcd (R = 0), not counted; 5-6: eps. Effective order 2: avg P = (1 + 1 + 4 eps) / 2 = 1,
    // avg R = (1/2 + 1/3 + 0 + 0 + 2 eps) / 2 = 5/12. F2 = 5 * 1 * 5/12 / (4 + 5/12) = (25/12) / (53/12) = 25/53.
    expect(chrF(['ab'], ['abcd'])).toBeCloseTo((100 * 25) / 53, 9);
  });

  it('is corpus level: statistics are summed over sentences before the score', () => {
    // "abc"/"abd" gives per order [3,3,2], [2,2,1], [1,1,0]; "x"/"x" adds [1,1,1] to order 1 only.
    // Order 1: 3 of 4 -> 3/4; order 2: 1/2; order 3: 0. avg P = avg R = (3/4 + 1/2 + 0) / 3 = 5/12 -> 41.666...
    expect(chrF(['abc', 'x'], ['abd', 'x'])).toBeCloseTo(500 / 12, 9);
    // The mean of the two sentence scores (38.89 and 100) would be 69.44: not what sacrebleu reports.
  });

  it('an empty prediction scores 0', () => {
    expect(chrF([''], ['abc'])).toBe(0);
  });
});

describe('ROUGE-L (LCS F-measure, rouge_score tokens)', () => {
  it('tokens: lowercased, punctuation splits, non-ASCII letters dropped', () => {
    expect(rougeTokens("The cat's hat, OK?")).toEqual(['the', 'cat', 's', 'hat', 'ok']);
  });

  it('"the cat sat on the mat" against "the cat lay on the mat"', () => {
    // LCS = the cat on the mat = 5 tokens; P = R = 5/6 -> F = 5/6.
    expect(rougeLPair('the cat sat on the mat', 'the cat lay on the mat')).toBeCloseTo(5 / 6, 12);
  });

  it('different lengths: "a b" against "a x b y"', () => {
    // LCS = a b (2); P = 2/2 = 1, R = 2/4 = 1/2 -> F = 2 * 1 * 0.5 / 1.5 = 2/3.
    expect(rougeLPair('a b', 'a x b y')).toBeCloseTo(2 / 3, 12);
  });

  it('order matters (a subsequence, not a bag): "b a" against "a b" has LCS 1', () => {
    // LCS 1 -> P = R = 1/2 -> F = 1/2.
    expect(rougeLPair('b a', 'a b')).toBeCloseTo(0.5, 12);
  });

  it('is the mean over examples; an empty side scores 0', () => {
    // (5/6 + 0) / 2 = 5/12.
    expect(rougeL(['the cat sat on the mat', '...'], ['the cat lay on the mat', 'x'])).toBeCloseTo(5 / 12, 12);
  });
});

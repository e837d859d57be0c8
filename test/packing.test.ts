/**
 * Packing (engine/train/packing.ts) on hand-made ids: EOS separators only where an example does not already end in
 * EOS, a separator trained on only after a trained last token, blocks cut at the max length with the labels' -100
 * masks kept, a block with nothing to train on past position 0 dropped, and the errors.
 */
import { describe, expect, it } from 'vitest';
import { packExamples, packForTraining } from '../src/engine/train/packing';

const EOS = 2;
const M = -100;

describe('packExamples', () => {
  it('concatenates with EOS separators and cuts max-length blocks, masks kept', () => {
    const { blocks, stats } = packExamples([
      { ids: [5, 6, 7], labels: [M, M, 7] }, // response at the end: its separator is trained on
      { ids: [8, 9], labels: [M, 9] },
      { ids: [10, EOS], labels: [M, EOS] }, // already ends in EOS: no separator
    ], 4, EOS);
    // stream: 5 6 7 2 | 8 9 2 | 10 2  ->  [5 6 7 2] [8 9 2 10] [2]; the last block trains only its position 0
    expect(blocks).toEqual([
      { ids: [5, 6, 7, 2], labels: [M, M, 7, 2] },
      { ids: [8, 9, 2, 10], labels: [M, 9, 2, M] },
    ]);
    expect(stats).toEqual({ examples: 3, blocks: 2, tokens: 8, separators: 2, dropped: 1 });
  });

  it('masks the separator after a masked last token and keeps a short last block', () => {
    const { blocks } = packExamples([{ ids: [5, 6, 7], labels: [M, M, 7] }, { ids: [3, 4], labels: [3, M] }], 5, EOS);
    // stream: 5 6 7 2 3 4 2 (the second separator masked, as 4 is)  ->  [5 6 7 2 3] [4 2]
    expect(blocks).toEqual([{ ids: [5, 6, 7, 2, 3], labels: [M, M, 7, 2, 3] }]);
    const kept = packExamples([{ ids: [5, 6, 7], labels: [M, M, 7] }, { ids: [3, 4], labels: [M, 4] }], 5, EOS).blocks;
    expect(kept).toEqual([{ ids: [5, 6, 7, 2, 3], labels: [M, M, 7, 2, M] }, { ids: [4, 2], labels: [4, 2] }]);
  });

  it('packForTraining tokenizes text with its EOS and does not cut a long text, it continues in the next block', () => {
    const encode = (s: string) => s.split(' ').map((w) => w.length + 10);
    const { examples, stats } = packForTraining([{ text: 'a bb ccc dddd eeeee' }, { prompt: 'x', response: 'yy' }], { maxLength: 4, encode, eosTokenId: EOS });
    // text: 11 12 13 14 15 + EOS; prompt/response: 11 | 12 + EOS (prompt masked)  ->  [11 12 13 14] [15 2 11 12] [2]
    expect(examples).toEqual([
      { inputIds: [11, 12, 13, 14], labels: [11, 12, 13, 14] },
      { inputIds: [15, 2, 11, 12], labels: [15, 2, M, 12] },
    ]); // the last block, [2], trains only its position 0 and is dropped
    expect(stats.dropped).toBe(1);
    expect(stats.separators).toBe(0);
  });

  it('says what is wrong', () => {
    expect(() => packExamples([{ ids: [1], labels: [1] }], 4, null)).toThrow(/tokenizer has none \(no eos_token\); turn packing off/);
    expect(() => packExamples([{ ids: [1, 2], labels: [1] }], 4, EOS)).toThrow(/Example 1 has 2 ids but 1 labels/);
    expect(() => packExamples([{ ids: [5, 6], labels: [M, M] }], 4, EOS)).toThrow(/no block has a token to train on/);
    expect(() => packExamples([], 4, EOS)).toThrow(/no examples to pack/);
    expect(() => packExamples([{ ids: [1], labels: [1] }], 1, EOS)).toThrow(/at least 2 tokens/);
  });
});

/**
 * Token classification without a model: seqeval's entity metrics on the classic tricky cases (numbers derived
 * by hand from seqeval 1.2's get_entities and scheme patterns, worked in the comments), CoNLL parsing and
 * transformers' run_ner.py label alignment.
 */
import { describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { defaultEntities, seqeval, strictEntities } from '../src/engine/train/seqeval';
import { alignLabels, bToI, encodeWords, parseConll } from '../src/engine/train/token-cls';
import { collate, encodeExamples } from '../src/engine/train/data';

const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-12);

describe('seqeval (default mode and strict)', () => {
  it('I- without B-: default mode starts an entity (O -> I), strict IOB2 does not (its start pattern is B only)', () => {
    const gold = [['B-PER', 'I-PER', 'O', 'B-LOC']];
    const pred = [['I-PER', 'I-PER', 'O', 'B-LOC']];
    expect(defaultEntities(pred)).toEqual([{ type: 'PER', sentence: 0, start: 0, end: 1 }, { type: 'LOC', sentence: 0, start: 3, end: 3 }]);
    const d = seqeval(gold, pred);
    expect(d.micro).toEqual({ precision: 1, recall: 1, f1: 1, support: 2 });
    // strict: pred has only LOC(3,3): P = 1/1, R = 1/2, F1 = 2 * 0.5 / 1.5 = 2/3; PER has 0 predicted -> 0.
    const s = seqeval(gold, pred, { mode: 'strict', scheme: 'IOB2' });
    expect(s.micro.precision).toBe(1);
    expect(s.micro.recall).toBe(0.5);
    close(s.micro.f1, 2 / 3);
    expect(s.perType.PER).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(s.perType.LOC).toEqual({ precision: 1, recall: 1, f1: 1, support: 1 });
    expect(s.accuracy).toBe(0.75); // 3 of 4 tags equal
  });

  it('adjacent entities of the same type: B B I is two entities, B I I one, so nothing matches', () => {
    // default: B at 1 ends PER(0,0) (B -> B) and starts one; O at the end closes PER(1,2).
    expect(defaultEntities([['B-PER', 'B-PER', 'I-PER']]).map((e) => [e.start, e.end])).toEqual([[0, 0], [1, 2]]);
    const r = seqeval([['B-PER', 'B-PER', 'I-PER']], [['B-PER', 'I-PER', 'I-PER']]);
    expect(r.micro).toEqual({ precision: 0, recall: 0, f1: 0, support: 2 });
    // IOB1: I starts after O; B of the same type starts the second (I -> B same tag ends the first).
    expect(strictEntities([['I-PER', 'B-PER']], 'IOB1').map((e) => [e.start, e.end])).toEqual([[0, 0], [1, 1]]);
    // A change of type ends a chunk in default mode: I-PER I-LOC is PER(0,0), LOC(1,1).
    expect(defaultEntities([['I-PER', 'I-LOC']]).map((e) => [e.type, e.start, e.end])).toEqual([['PER', 0, 0], ['LOC', 1, 1]]);
  });

  it('IOBES singletons: S- is an entity on its own; B- I- without E- is one in default mode only', () => {
    const gold = [['S-LOC', 'O', 'B-PER', 'E-PER', 'S-PER']];
    const pred = [['S-LOC', 'O', 'B-PER', 'I-PER', 'S-PER']];
    // default: pred B I then S ends PER(2,3) (I -> S), so all three gold entities are found.
    expect(seqeval(gold, pred).micro.f1).toBe(1);
    // strict IOBES: B-PER I-PER ends on S-PER, but only S / E may end an entity, so pred = LOC(0,0), PER(4,4):
    // P = 2/2, R = 2/3, F1 = 2 * (2/3) / (5/3) = 0.8; PER: P 1/1, R 1/2, F1 2/3.
    const s = seqeval(gold, pred, { mode: 'strict', scheme: 'IOBES' });
    expect(s.micro.precision).toBe(1);
    close(s.micro.recall, 2 / 3);
    close(s.micro.f1, 0.8);
    expect(s.perType.PER.recall).toBe(0.5);
    close(s.perType.PER.f1, 2 / 3);
    expect(s.perType.LOC.f1).toBe(1);
  });

  it('entities never cross sentences, and a tag the scheme lacks is an error naming it', () => {
    expect(defaultEntities([['B-PER'], ['I-PER']]).map((e) => [e.sentence, e.start])).toEqual([[0, 0], [1, 0]]);
    expect(() => strictEntities([['S-PER']], 'IOB2')).toThrow(EngineError);
    expect(() => strictEntities([['S-PER']], 'IOB2')).toThrow(/Invalid tag "S-PER" for the IOB2 scheme/);
  });
});

describe('token-classification data', () => {
  it('CoNLL: first column the word, last the label, blank lines between sentences, -DOCSTART- skipped', () => {
    const text = '-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter B-PER\nBlackburn I-PER\n';
    expect(parseConll(text).map(({ tokens, tags }) => ({ tokens, tags }))).toEqual([
      { tokens: ['EU', 'rejects'], tags: ['B-ORG', 'O'] },
      { tokens: ['Peter', 'Blackburn'], tags: ['B-PER', 'I-PER'] },
    ]);
    expect(() => parseConll('EU B-ORG\nrejects\n', 'train.conll')).toThrow(/train\.conll line 2: "rejects" has no label/);
  });

  it('labels follow run_ner.py: first sub-token labelled, the rest and special tokens -100; or all with B- -> I-', () => {
    const labels = ['O', 'B-PER', 'I-PER'];
    // [CLS] Black ##burn is [SEP]: words 0 (2 pieces) and 1.
    const { ids, wordIds } = encodeWords(['Blackburn', 'is'], (w) => (w === 'Blackburn' ? [11, 12] : [13]), { prefix: [101], suffix: [102] });
    expect(ids).toEqual([101, 11, 12, 13, 102]);
    expect(wordIds).toEqual([null, 0, 0, 1, null]);
    expect(alignLabels(wordIds, [1, 0])).toEqual([-100, 1, -100, 0, -100]);
    expect(bToI(labels)).toEqual([0, 2, 2]);
    expect(alignLabels(wordIds, [1, 0], true, bToI(labels))).toEqual([-100, 1, 2, 0, -100]);
  });

  it('pre-tokenized rows: labels per id (class or -100), padded with -100; text rows without labels are refused', () => {
    const enc = encodeExamples([{ inputIds: [101, 7, 8, 102], labels: [-100, 1, 2, -100] }, { inputIds: [101, 9], labels: [-100, 0] }], { task: 'TOKEN_CLS', maxLength: 8, numLabels: 3 });
    const b = collate(enc, 'TOKEN_CLS', 0);
    expect(b.labels.arraySync()).toEqual([[-100, 1, 2, -100], [-100, 0, -100, -100]]);
    expect(b.attentionMask.arraySync()).toEqual([[1, 1, 1, 1], [1, 1, 0, 0]]);
    b.inputIds.dispose(); b.attentionMask.dispose(); b.labels.dispose();
    expect(() => encodeExamples([{ inputIds: [1, 2], labels: [0, 3] }], { task: 'TOKEN_CLS', maxLength: 8, numLabels: 3 })).toThrow(/row 1: .*class index in 0\.\.2 or -100/);
    expect(() => encodeExamples([{ text: 'a b' }], { task: 'TOKEN_CLS', maxLength: 8, encode: () => [1, 2] })).toThrow(/needs per-token labels/);
  });
});

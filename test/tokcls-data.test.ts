/** The engine's token-classification file reading (shared by the CLI and the studio's worker), hand-checked. */
import { describe, expect, it } from 'vitest';
import { encodeTokenClsRows, entitySpans, parseLabelList, parseTokenClsFile, tagList, tokenClsStats, type TokenClsRow } from '../src/engine/train/tokcls-data';

describe('tokcls-data', () => {
  it('CoNLL: sentences by blank lines, -DOCSTART- skipped, the last column is the tag, a line without a tag is an issue by line', () => {
    const text = '-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\nbad\nline O\n';
    const { rows, issues } = parseTokenClsFile('a.conll', text);
    expect(rows.map((r) => [r.line, r.words, r.tags])).toEqual([[3, ['EU', 'rejects'], ['B-ORG', 'O']], [6, ['Peter', 'Blackburn'], ['B-PER', 'I-PER']]]);
    expect(issues).toEqual([{ file: 'a.conll', line: 9, message: expect.stringMatching(/"bad" has no label/) }]);
  });

  it('JSONL: tag names or ids, pre-tokenized rows; bad rows are issues by line; a missing column throws', () => {
    const text = [
      JSON.stringify({ tokens: ['Ohio', 'votes'], ner_tags: [1, 0] }),
      JSON.stringify({ tokens: ['x'], ner_tags: [0, 0] }),
    ].join('\n');
    const { rows, issues } = parseTokenClsFile('t.jsonl', text);
    expect(rows).toEqual([{ file: 't.jsonl', line: 1, words: ['Ohio', 'votes'], tags: [1, 0] }]);
    expect(issues.map((i) => i.line)).toEqual([2]);
    const pre = parseTokenClsFile('p.jsonl', JSON.stringify({ input_ids: [5, 6], labels: [-100, 2] }));
    expect(pre.rows[0]).toMatchObject({ inputIds: [5, 6], tags: [-100, 2] });
    expect(() => parseTokenClsFile('n.jsonl', JSON.stringify({ text: 'a' }))).toThrow(/no column "tokens"/);
    expect(() => parseTokenClsFile('n.csv', 'a,b')).toThrow(/CoNLL .* or JSONL/);
  });

  it('label lists: given, else the data tags sorted; ids without a list name what to do', () => {
    expect(parseLabelList('O, B-LOC ,I-LOC')).toEqual(['O', 'B-LOC', 'I-LOC']);
    expect(() => parseLabelList('O,O')).toThrow(/two or more distinct/);
    const rows = [{ file: 'f', line: 1, words: ['a', 'b'], tags: ['O', 'B-LOC'] }];
    expect(tagList(rows, undefined, null)).toEqual(['B-LOC', 'O']);
    expect(() => tagList([{ file: 'f', line: 1, words: ['a'], tags: [0] }], undefined, null, 'enter the label list')).toThrow(/enter the label list/);
  });

  it('encodes words with a whitespace tokenizer: first sub-token labelled, unknown tags name their line', () => {
    const vocab: Record<string, number> = { New: 1, York: 2, ' York': 3, votes: 4, ' votes': 5 };
    const tok = { encode: (s: string) => (vocab[s] !== undefined ? [vocab[s]] : [9, 9]) } as never;
    const rows = encodeTokenClsRows<TokenClsRow>([{ file: 'f', line: 4, words: ['New', 'York', 'zz'], tags: ['B-LOC', 'I-LOC', 'O'] }], ['O', 'B-LOC', 'I-LOC'], tok, false);
    // 'zz' -> two unknown pieces: the second is -100.
    expect(rows[0].inputIds).toEqual([1, 3, 9, 9]);
    expect(rows[0].labels).toEqual([1, 2, 0, -100]);
    expect(() => encodeTokenClsRows([{ file: 'f', line: 7, words: ['a'], tags: ['B-X'] }], ['O'], tok, false, { unknownTag: 'edit the label list' })).toThrow(/f line 7: tag "B-X" is not in the label list \(O\); edit the label list/);
  });

  it('entity spans and stats', () => {
    expect(entitySpans(['B-PER', 'I-PER', 'O', 'I-LOC', 'B-LOC', 'B-LOC'])).toEqual([
      { type: 'PER', start: 0, end: 2 }, { type: 'LOC', start: 3, end: 4 }, { type: 'LOC', start: 4, end: 5 }, { type: 'LOC', start: 5, end: 6 },
    ]);
    const s = tokenClsStats([{ file: 'f', line: 1, words: ['a', 'b', 'c', 'd'], tags: ['B-PER', 'I-PER', 'O', 'B-DATE'], inputIds: [1, 2, 3, 4, 5] }], [], 4);
    expect(s).toEqual({ sentences: 1, words: 4, oRate: 0.25, entities: { PER: 1, DATE: 1 }, truncated: 1 });
  });
});

describe('TOKEN_CLS preset and baseline', () => {
  it('Quick demo for TOKEN_CLS: the measured sotu-ner row, targets without the head', async () => {
    const { presetFor } = await import('../src/engine/train/presets');
    const p = presetFor('quick', 'TOKEN_CLS', 'LORA', 2e-4);
    expect(p.args).toEqual({ learningRate: 5e-3, maxSteps: 60, batchSize: 8, maxLength: 64, warmupSteps: 5, evalSteps: 20, scheduler: 'linear' });
    // The roles the row names are, on the built-in GPT-2, exactly the measured c_attn, c_proj, c_fc.
    expect(p.targets).toEqual({ roles: ['attention', 'mlp'] });
    const { readFileSync } = await import('node:fs');
    const { moduleRoles, moduleTree } = await import('../src/engine/models');
    const { findMinimalTargetModules } = await import('../src/engine/peft/targets');
    const { presetRoleSelection } = await import('../src/engine/train/presets');
    const config = JSON.parse(readFileSync('public/models/sotu-gpt2/config.json', 'utf8'));
    const modules = moduleTree(config, 'TOKEN_CLS');
    const chosen = presetRoleSelection(p.targets as { roles: ['attention', 'mlp'] }, moduleRoles(config, 'TOKEN_CLS', modules));
    const others = modules.map((m) => m.name).filter((n) => n && !chosen.includes(n));
    expect(findMinimalTargetModules(chosen, others).sort().join(',')).toBe('c_attn,c_fc,c_proj');
    expect(p.measured).toMatch(/entity F1/);
  });

  it('the all-O tagger: token accuracy = the O rate of scored tokens (-100 skipped)', async () => {
    const { allOTagger } = await import('../src/engine/train/baselines');
    const b = allOTagger([{ labels: [-100, 0, 0, 3] }, { labels: [0, 1, -100] }], 0);
    expect(b.majority).toBe(3 / 5);
    expect(b.majorityLabel).toBe(0);
  });
});

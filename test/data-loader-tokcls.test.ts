/**
 * The studio's TOKEN_CLS data (worker/data-loader.ts): CoNLL and JSONL uploads and the built-in sotu-ner, words
 * split into the built-in GPT-2 tokenizer's sub-words (ids checked against the tokenizer word by word), tags as the
 * file gives them, bad lines reported by line; the README Python for TOKEN_CLS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';
import { buildReadme } from '../src/state/export-files';
import { loadData } from '../src/worker/data-loader';
import type { DataRequest } from '../src/worker/protocol';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizerFromDir(join(ROOT, 'public/models/sotu-gpt2'));
});
afterEach(() => vi.unstubAllGlobals());
const file = (name: string, text: string) => ({ kind: 'file' as const, file: new File([text], name) });
const req = (source: DataRequest['source'], more: Partial<DataRequest> = {}): DataRequest => ({ source, task: 'TOKEN_CLS', validationSplit: 0.25, maxLength: 64, seed: 42, ...more });
const piece = (w: string, first: boolean) => tok.encode(first ? w : ` ${w}`, { addSpecialTokens: false });

describe('studio TOKEN_CLS data', () => {
  const conll = ['-DOCSTART- O', '', 'Ohio B-LOC', 'votes O', '', 'Harry B-PER', 'Truman I-PER', 'spoke O', '', 'broken', 'line O', '', 'In O', '1933 B-DATE', '', 'New B-LOC', 'York I-LOC', ''].join('\n');

  it('CoNLL upload: sentences encoded word by word, first sub-token labelled, a line without a tag reported by line', async () => {
    const d = await loadData(req(file('ner.conll', conll)), 'http://x/', null, tok);
    expect(d.labels).toEqual(['B-DATE', 'B-LOC', 'B-PER', 'I-LOC', 'I-PER', 'O']);
    expect(d.summary.issues).toEqual([expect.stringMatching(/^ner\.conll line 10: "broken" has no label/)]);
    expect(d.train.length + d.validation.length).toBe(4);
    const all = [...d.train, ...d.validation];
    const harry = all.find((e) => e.line === 6)!;
    const ids = [piece('Harry', true), piece('Truman', false), piece('spoke', false)];
    expect(harry.inputIds).toEqual(ids.flat());
    // B-PER=2, I-PER=4, O=5 on each word's first piece, -100 on the rest.
    expect(harry.labels).toEqual(ids.flatMap((p, i) => p.map((_, j) => (j ? -100 : [2, 4, 5][i]))));
    expect(d.summary.tokcls!.sample).toBeTruthy();
    expect(d.summary.tokcls!.train.sentences + d.summary.tokcls!.validation.sentences).toBe(4);
  });

  it('JSONL ids with the label list given; label all sub-tokens maps B- to I-; an unknown tag names its line', async () => {
    const rows = [{ tokens: ['Massachusetts', 'votes'], ner_tags: [1, 0] }, { tokens: ['x', 'y'], ner_tags: [0, 0] }];
    const text = rows.map((r) => JSON.stringify(r)).join('\n');
    const d = await loadData(req(file('t.jsonl', text), { validationSplit: 0, tokcls: { labelList: ['O', 'B-LOC', 'I-LOC'], labelAllTokens: true } }), 'http://x/', null, tok);
    const m = piece('Massachusetts', true);
    expect(m.length).toBeGreaterThan(1);
    expect(d.train[0].labels).toEqual([1, ...m.slice(1).map(() => 2), ...piece('votes', false).map((_, j) => (j ? 0 : 0))]);
    const bad = [JSON.stringify({ tokens: ['a'], ner_tags: ['B-ZZZ'] }), text].join('\n');
    const e = await loadData(req(file('u.jsonl', bad), { validationSplit: 0, tokcls: { labelList: ['O', 'B-LOC', 'I-LOC'] } }), 'http://x/', null, tok);
    expect(e.summary.issues[0]).toMatch(/^u\.jsonl line 1: tag "B-ZZZ" is not in the label list .*add it to the label list in the Data panel/);
    expect(e.train.length).toBe(2);
  });

  it('built-in sotu-ner: its label list, validation file, the all-O baseline', async () => {
    vi.stubGlobal('fetch', async (url: string) => new Response(readFileSync(join(ROOT, 'public', new URL(url).pathname.slice(1)))));
    const d = await loadData(req({ kind: 'builtin', id: 'sotu-ner' }), 'http://x/', null, tok);
    expect(d.labels).toEqual(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-DATE', 'I-DATE', 'B-NUM', 'I-NUM']);
    expect([d.train.length, d.validation.length]).toEqual([2000, 200]);
    const scored = d.validation.flatMap((e) => e.labels!.filter((l) => l >= 0));
    expect(d.summary.baselines!.majority).toBeCloseTo(scored.filter((l) => l === 0).length / scored.length, 12);
    await expect(loadData(req({ kind: 'builtin', id: 'spam' }), 'http://x/', null, tok)).rejects.toThrow(/SEQ_CLS dataset; pick a tagging dataset/);
  });

  it('README: AutoModelForTokenClassification with num_labels / id2label, words split as trained', () => {
    const r = buildReadme({ task: 'TOKEN_CLS', step: 10, labels: ['O', 'B-LOC', 'I-LOC'], config: { peft_type: 'LORA', base_model_name_or_path: 'x/y' } });
    expect(r).toContain('AutoModelForTokenClassification.from_pretrained(');
    expect(r).toContain('num_labels=3,');
    expect(r).toContain('id2label={"0":"O","1":"B-LOC","2":"I-LOC"}');
    expect(r).toContain('add_prefix_space=True');
    expect(r).toContain('is_split_into_words=True');
  });
});

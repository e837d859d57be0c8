/**
 * The studio's SEQ_2_SEQ_LM data (worker/data-loader.ts): the built-in cmudict-g2p, uploaded CSV / JSONL with a
 * source and a target column (picked, or found by name), pre-tokenized {"input_ids", "labels"} rows, bad rows
 * reported by line; source / target lengths with </s> from a T5-style tokenizer; the zip README for SEQ_2_SEQ_LM.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';
import { buildReadme } from '../src/state/export-files';
import { loadData } from '../src/worker/data-loader';
import { writeT5Tokenizer } from './support/t5-tokenizer';
import type { DataRequest } from '../src/worker/protocol';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const file = (name: string, text: string) => ({ kind: 'file' as const, file: new File([text], name) });
const req = (source: DataRequest['source'], more: Partial<DataRequest> = {}): DataRequest => ({ source, task: 'SEQ_2_SEQ_LM', validationSplit: 0.25, maxLength: 4, seed: 42, ...more });

/** T5-style Unigram pieces with </s> appended (test/support/t5-tokenizer.ts). */
const WORDS = ['hello', 'world', 'hallo', 'welt', 'good', 'morning', 'guten', 'morgen'];

let tmp: string;
let tok: Tokenizer;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'peft-s2s-data-'));
  writeT5Tokenizer(tmp, WORDS);
  tok = await loadTokenizerFromDir(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.unstubAllGlobals());

describe('studio SEQ_2_SEQ_LM data', () => {
  it('the built-in cmudict-g2p: its own validation file, source and target columns from the index, a sample row', async () => {
    vi.stubGlobal('fetch', async (url: string) => new Response(readFileSync(join(ROOT, 'public', new URL(url).pathname.slice(1)))));
    const d = await loadData(req({ kind: 'builtin', id: 'cmudict-g2p' }), 'http://x/', null, null);
    const lines = (f: string) => readFileSync(join(ROOT, 'public/datasets/cmudict-g2p', f), 'utf8').trim().split('\n');
    expect(d.train.length).toBe(lines('train.jsonl').length);
    expect(d.validation.length).toBe(lines('validation.jsonl').length);
    const first = JSON.parse(lines('train.jsonl')[0]) as { source: string; target: string };
    expect(d.train[0]).toMatchObject({ text: first.source, target: first.target, line: 1 });
    expect(d.summary.seq2seq).toMatchObject({ sourceColumn: 'source', targetColumn: 'target', source: null, target: null, sample: { line: 1, ...first } });
    expect(d.summary.issueCount).toBe(0);
  });

  it('a built-in dataset of another task is refused with what to pick', async () => {
    vi.stubGlobal('fetch', async (url: string) => new Response(readFileSync(join(ROOT, 'public', new URL(url).pathname.slice(1)))));
    await expect(loadData(req({ kind: 'builtin', id: 'spam' }), 'http://x/', null, null)).rejects.toThrow(/SEQ_CLS dataset; pick a source \/ target dataset/);
  });

  const csv = 'en,de\nhello world,hallo welt\ngood morning,guten morgen\nhello,\ngood,guten\n';

  it('a CSV with other column names: the first two columns until others are picked; an empty target is reported by line', async () => {
    const first = await loadData(req(file('pairs.csv', csv)), 'http://x/', null, tok);
    expect(first.summary.warnings).toEqual(['No source / target columns by name: reading "en" as the source and "de" as the target; pick others below.']);
    expect(first.summary.seq2seq).toMatchObject({ sourceColumn: 'en', targetColumn: 'de' });
    // Picked the other way round (a column the file lacks falls back to the file's own columns).
    const back = await loadData(req(file('pairs.csv', csv), { seq2seq: { sourceColumn: 'de', targetColumn: 'en' } }), 'http://x/', null, tok);
    expect(back.summary.issues).toEqual(['pairs.csv line 4: column "de" (the source) is empty']);
    expect(back.summary.warnings).toEqual([]);
    const gone = await loadData(req(file('pairs.csv', csv), { seq2seq: { sourceColumn: 'question', targetColumn: 'de' } }), 'http://x/', null, tok);
    expect(gone.summary.seq2seq).toMatchObject({ sourceColumn: 'en', targetColumn: 'de' });
    const d = await loadData(req(file('pairs.csv', csv), { seq2seq: { sourceColumn: 'en', targetColumn: 'de' } }), 'http://x/', null, tok);
    expect(d.summary.issues).toEqual(['pairs.csv line 4: column "de" (the target) is empty']);
    expect(d.train.length + d.validation.length).toBe(3);
    expect(d.summary.seq2seq).toMatchObject({ sourceColumn: 'en', targetColumn: 'de', sample: { line: 2, source: 'hello world', target: 'hallo welt' } });
  });

  it('source and target lengths count the </s> the tokenizer adds once; rows past max length are counted as truncated', async () => {
    const rows = ['{"input":"hello world good morning","output":"hallo"}', '{"input":"good","output":"guten morgen hallo welt"}'].join('\n');
    const d = await loadData(req(file('p.jsonl', rows), { validationSplit: 0 }), 'http://x/', null, tok);
    const s = d.summary.seq2seq!;
    expect([s.sourceColumn, s.targetColumn]).toEqual(['input', 'output']);
    // hello world good morning </s> = 5 > 4; good </s> = 2. Targets: hallo </s> = 2; guten morgen hallo welt </s> = 5.
    expect(s.source).toMatchObject({ count: 2, min: 2, max: 5, truncated: 1, maxLength: 4 });
    expect(s.target).toMatchObject({ count: 2, min: 2, max: 5, truncated: 1 });
    // A max target length of its own (the CLI's --max-target-length) counts the targets against it.
    const longer = await loadData(req(file('p.jsonl', rows), { validationSplit: 0, seq2seq: { maxTargetLength: 8 } }), 'http://x/', null, tok);
    expect(longer.summary.seq2seq!.target).toMatchObject({ truncated: 0, maxLength: 8 });
    expect(longer.summary.seq2seq!.source).toMatchObject({ truncated: 1, maxLength: 4 });
    expect(d.summary.warnings).toEqual([expect.stringMatching(/No validation rows/)]);
  });

  it('pre-tokenized rows: input_ids and labels as given; a row without labels is reported by line and skipped', async () => {
    const rows = ['{"input_ids":[3,4,1],"labels":[5,6,1]}', '{"input_ids":[3,1]}', '{"input_ids":[7,1],"labels":[-100,8,1]}', '{"input_ids":[4,1],"labels":[6,1]}'].join('\n');
    const d = await loadData(req(file('ids.jsonl', rows), { validationSplit: 0.25 }), 'http://x/', null, null);
    expect(d.summary.issues).toEqual([expect.stringMatching(/^ids\.jsonl line 2: pre-tokenized seq2seq rows need "labels"/)]);
    const all = [...d.train, ...d.validation];
    expect(all).toHaveLength(3);
    expect(all.find((e) => e.line === 3)).toMatchObject({ inputIds: [7, 1], labels: [-100, 8, 1] });
    expect(d.summary.seq2seq).toMatchObject({ sourceColumn: null, targetColumn: null, sample: null });
    expect(d.summary.seq2seq!.source).toMatchObject({ count: 3, max: 3 });
  });

  it('a file with one column is refused naming it', async () => {
    await expect(loadData(req(file('one.csv', 'text\nhello\n')), 'http://x/', null, tok)).rejects.toThrow(/one\.csv: no column "source"; columns are "text" \(choose the source in the Data panel\)/);
  });

  it('a file with no usable row is an error naming the first problem', async () => {
    await expect(loadData(req(file('e.csv', 'source,target\nhello,\n')), 'http://x/', null, tok)).rejects.toThrow(/e\.csv: no usable rows \(e\.csv line 2: column "target" \(the target\) is empty\)/);
  });

  it('the zip README loads a SEQ_2_SEQ_LM adapter with AutoModelForSeq2SeqLM and generates from a source', () => {
    const r = buildReadme({ task: 'SEQ_2_SEQ_LM', step: 5, labels: [], config: { peft_type: 'LORA', base_model_name_or_path: 'sotu-t5', task_type: 'SEQ_2_SEQ_LM' } });
    expect(r).toContain('from transformers import AutoModelForSeq2SeqLM, AutoTokenizer');
    expect(r).toContain('base = AutoModelForSeq2SeqLM.from_pretrained(');
    expect(r).toMatch(/model\.generate\(\*\*inputs, max_new_tokens=40, do_sample=False\)/);
    expect(r).not.toMatch(/num_labels|pad_token_id/);
  });
});

describe('SEQ_2_SEQ_LM Hub cards', () => {
  it('the adapter card and the merged card load AutoModelForSeq2SeqLM, tag text2text-generation and generate from a source', async () => {
    const { modelCard, mergedModelCard } = await import('../src/engine/io/hub-push');
    const config = { peft_type: 'LORA', task_type: 'SEQ_2_SEQ_LM', base_model_name_or_path: 'me/t5' };
    const card = modelCard({ config, baseModel: 'me/t5', task: 'SEQ_2_SEQ_LM', repo: 'me/g2p' });
    const merged = mergedModelCard({ baseModel: 'me/t5', adapterConfig: config, task: 'SEQ_2_SEQ_LM', dtype: 'F32', repo: 'me/g2p-merged' });
    for (const c of [card, merged]) {
      expect(c).toMatch(/^pipeline_tag: text2text-generation$/m);
      expect(c).toContain('AutoModelForSeq2SeqLM.from_pretrained(');
      expect(c).toContain('model.generate(**tokenizer("Your source text here", return_tensors="pt"), max_new_tokens=40)');
      expect(c).not.toContain('.logits.argmax(-1)');
    }
  });
});

describe('SEQ_2_SEQ_LM training curves', () => {
  it('metrics.jsonl rows of a seq2seq run chart eval_chrf as the task metric', async () => {
    const { curvesFromRows } = await import('../src/engine/export/chart-svg');
    const rows = [
      { step: 1, loss: 7 }, { step: 2, loss: 5 },
      { step: 2, eval_loss: 4, eval_accuracy: 0.2, eval_exact_match: 0, eval_chrf: 11.1, eval_rougeL: 0.19 },
    ];
    expect(curvesFromRows(rows)?.metric).toEqual({ name: 'eval_chrf', points: [{ step: 2, value: 11.1 }] });
    expect(curvesFromRows([{ step: 2, eval_loss: 4, eval_accuracy: 0.2 }])?.metric?.name).toBe('eval_accuracy');
  });
});

/**
 * `train --task token_cls` on bert-tiny-tokcls (in-process command functions): CoNLL words through a WordPiece
 * tokenizer with run_ner.py's label alignment, JSONL tags and pre-tokenized rows; the loss goes down, evaluation
 * logs seqeval's entity precision / recall / F1, and the adapter has PEFT's TOKEN_CLS keys and config fields
 * (test/fixtures/adapters/bert-tokcls-lora, saved by peft 0.15.2).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectCommand } from '../src/cli/inspect';
import { trainCommand } from '../src/cli/train';
import { encodeTokenClsRows, readTokenClsFile, tagList } from '../src/cli/train-tokcls';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { FIX } from './helpers';

const MODEL = join(FIX, 'models', 'bert-tiny-tokcls');
const ADAPTER = join(FIX, 'adapters', 'bert-tokcls-lora');
const TAGS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
const rows = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A BERT-style WordPiece tokenizer.json over a few words ("johnson" is john ##son). */
function writeTokenizer(dir: string): void {
  const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'john', '##son', 'mary', 'smith', 'lives', 'in', 'paris', 'rome', 'visited', 'and', 'today', 'anna'];
  const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  const special = (content: string) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'BertTokenizer', cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', do_lower_case: true }));
}

const SENTENCES: [string, string][][] = [
  [['John', 'B-PER'], ['Smith', 'I-PER'], ['lives', 'O'], ['in', 'O'], ['Paris', 'B-LOC']],
  [['Mary', 'B-PER'], ['visited', 'O'], ['Rome', 'B-LOC'], ['today', 'O']],
  [['Anna', 'B-PER'], ['and', 'O'], ['Johnson', 'B-PER'], ['visited', 'O'], ['Paris', 'B-LOC']],
  [['Johnson', 'B-PER'], ['lives', 'O'], ['in', 'O'], ['Rome', 'B-LOC']],
];

let tmp: string;
let conll: string;
beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'peft-cli-tokcls-'));
  writeTokenizer(tmp);
  conll = join(tmp, 'train.conll');
  const sents = Array.from({ length: 24 }, (_, i) => SENTENCES[i % SENTENCES.length]);
  writeFileSync(conll, `-DOCSTART- O\n\n${sents.map((s) => s.map(([w, t]) => `${w} ${t}`).join('\n')).join('\n\n')}\n`);
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('token_cls data', () => {
  it('CoNLL words become WordPiece ids with the first sub-token labelled (or all, B- -> I-)', async () => {
    const tok = await loadTokenizerFromDir(tmp);
    const read = () => readTokenClsFile(conll, { conll: false }).slice(2, 3);
    const [r] = encodeTokenClsRows(read(), TAGS, tok, false);
    // [CLS] anna and john ##son visited paris [SEP]
    expect(r.inputIds).toEqual([2, 15, 13, 4, 5, 12, 10, 3]);
    expect(r.labels).toEqual([-100, 1, 0, 1, -100, 0, 3, -100]);
    expect(encodeTokenClsRows(read(), TAGS, tok, true)[0].labels).toEqual([-100, 1, 0, 1, 2, 0, 3, -100]);
  });

  it('JSONL tags as names or ids; the label list from the data is sorted; an unknown tag names its line', async () => {
    const tok = await loadTokenizerFromDir(tmp);
    const f = join(tmp, 'tags.jsonl');
    writeFileSync(f, [{ tokens: ['Mary', 'visited'], ner_tags: ['B-PER', 'O'] }, { tokens: ['Rome'], ner_tags: ['B-LOC'] }].map((x) => JSON.stringify(x)).join('\n'));
    const data = readTokenClsFile(f, { conll: false });
    expect(tagList(data, undefined, ['LABEL_0', 'LABEL_1'])).toEqual(['B-LOC', 'B-PER', 'O']);
    expect(tagList(data, 'O,B-PER,I-PER,B-LOC,I-LOC', null)).toEqual(TAGS);
    expect(() => encodeTokenClsRows(readTokenClsFile(f, { conll: false }), ['O', 'B-PER'], tok, false)).toThrow(/tags\.jsonl line 2: tag "B-LOC" is not in the label list/);
    const ids = join(tmp, 'pre.jsonl');
    writeFileSync(ids, JSON.stringify({ input_ids: [2, 6, 12, 3], labels: [-100, 1, 0, -100] }));
    expect(encodeTokenClsRows(readTokenClsFile(ids, { conll: false }), TAGS, undefined, false)[0].labels).toEqual([-100, 1, 0, -100]);
  });
});

describe('train --task token_cls', () => {
  it('CoNLL on bert-tiny-tokcls: the loss goes down, eval rows carry entity P / R / F1, PEFT\'s TOKEN_CLS files', async () => {
    const out = join(tmp, 'run');
    await trainCommand([
      '--model', MODEL, '--tokenizer', tmp, '--data', conll, '--task', 'token_cls', '--label-list', TAGS.join(','),
      '--method', 'lora', '--r', '4', '--lora-alpha', '8', '--target-modules', 'query,value', '--steps', '30', '--lr', '2e-2',
      '--batch-size', '4', '--validation-split', '0.25', '--eval-steps', '15', '--out', out,
    ]);
    const metrics = rows(join(out, 'metrics.jsonl'));
    const losses = metrics.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
    const evals = metrics.filter((x) => 'eval_loss' in x);
    expect(evals.map((x) => x.step)).toEqual([15, 30]);
    for (const e of evals) for (const k of ['eval_accuracy', 'eval_precision', 'eval_recall', 'eval_f1']) expect(e[k]).toBeGreaterThanOrEqual(0);
    expect(evals[1].eval_f1).toBeGreaterThan(0.5);
    const labels = JSON.parse(readFileSync(join(out, 'labels.json'), 'utf8'));
    expect(labels.id2label).toEqual(Object.fromEntries(TAGS.map((t, i) => [String(i), t])));

    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual([...readSafetensorsFile(join(ADAPTER, 'adapter_model.safetensors')).tensors.keys()].sort());
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(ADAPTER, 'adapter_config.json'), 'utf8'));
    expect(Object.keys(cfg).sort()).toEqual(Object.keys(ref).sort());
    for (const k of ['task_type', 'peft_type', 'modules_to_save', 'target_modules', 'r', 'lora_alpha']) expect(cfg[k]).toEqual(ref[k]);
  }, 120_000);

  it('prefix tuning on bert-tiny-tokcls: the loss goes down, entity F1 is scored, the file holds the prefix and the classifier', async () => {
    const out = join(tmp, 'prefix-run');
    await trainCommand([
      '--model', MODEL, '--tokenizer', tmp, '--data', conll, '--task', 'token_cls', '--label-list', TAGS.join(','),
      '--method', 'prefix_tuning', '--num-virtual-tokens', '4', '--steps', '30', '--lr', '3e-2',
      '--batch-size', '4', '--validation-split', '0.25', '--eval-steps', '30', '--out', out,
    ]);
    const metrics = rows(join(out, 'metrics.jsonl'));
    const losses = metrics.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
    const evals = metrics.filter((x) => 'eval_loss' in x);
    expect(evals[evals.length - 1].eval_f1).toBeGreaterThan(0.5);
    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual(['base_model.classifier.bias', 'base_model.classifier.weight', 'prompt_embeddings']);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'PREFIX_TUNING', task_type: 'TOKEN_CLS', num_virtual_tokens: 4, num_transformer_submodules: 1 });
  }, 120_000);

  it('--preset quick on BERT targets its attention and MLP modules (the preset names roles, not GPT-2 names)', async () => {
    const out = join(tmp, 'preset');
    await trainCommand([
      '--model', MODEL, '--tokenizer', tmp, '--data', conll, '--task', 'token_cls', '--label-list', TAGS.join(','),
      '--method', 'lora', '--preset', 'quick', '--steps', '2', '--eval-steps', '0', '--validation-split', '0', '--out', out,
    ]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect([...cfg.target_modules].sort()).toEqual(['dense', 'key', 'query', 'value']);
    expect(cfg.modules_to_save).toEqual(['classifier', 'score']);
    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys.some((k) => k.includes('attention.output.dense.lora_A')) && keys.some((k) => k.includes('intermediate.dense.lora_A'))).toBe(true);
    expect(keys.some((k) => k.includes('classifier') && k.includes('lora'))).toBe(false);
  }, 60_000);

  it('pre-tokenized rows train without a tokenizer; the model\'s 5 labels must match the label list', async () => {
    const f = join(tmp, 'ids.jsonl');
    writeFileSync(f, Array.from({ length: 8 }, (_, i) => JSON.stringify({ input_ids: [2, 6 + (i % 3), 12, 10, 3], labels: [-100, 1, 0, 3, -100] })).join('\n'));
    const out = join(tmp, 'ids-run');
    await trainCommand(['--model', MODEL, '--data', f, '--task', 'token_cls', '--label-list', TAGS.join(','), '--method', 'lora', '--r', '4',
      '--target-modules', 'query,value', '--steps', '10', '--lr', '2e-2', '--batch-size', '4', '--out', out]);
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)));
    await expect(trainCommand(['--model', MODEL, '--data', f, '--task', 'token_cls', '--label-list', 'O,B-PER,I-PER', '--method', 'lora',
      '--target-modules', 'query', '--steps', '1', '--out', join(tmp, 'bad')])).rejects.toThrow(/the label list has 3 tags .* has 5 labels/);
  }, 60_000);

  it('inspect --task token_cls gives BertForTokenClassification', async () => {
    const out = join(tmp, 'tree.json');
    await inspectCommand([MODEL, '--task', 'token_cls', '--out', out]);
    expect(JSON.parse(readFileSync(out, 'utf8')).class_name).toBe('BertForTokenClassification');
  });
});

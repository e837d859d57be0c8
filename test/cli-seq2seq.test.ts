/**
 * `train --task seq_2_seq_lm` on t5-tiny (in-process command functions): a source / target CSV through a T5-style
 * Unigram tokenizer (</s> appended to source and target, as transformers' T5 tokenizer does) and pre-tokenized
 * {"input_ids", "labels"} rows; the loss goes down, and the adapter has PEFT's SEQ_2_SEQ_LM keys and config fields
 * (test/fixtures/adapters/t5-lora, saved by peft 0.15.2).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectCommand } from '../src/cli/inspect';
import { logitsCommand } from '../src/cli/logits';
import { targetsCommand } from '../src/cli/targets';
import { trainCommand } from '../src/cli/train';
import { readSeq2SeqFile } from '../src/cli/train-seq2seq';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { encodeExamples } from '../src/engine/train/data';
import { writeT5Tokenizer } from './support/t5-tokenizer';
import { FIX, fixtureTensors, maxAbsDiff } from './helpers';

const MODEL = join(FIX, 'models', 't5-tiny');
const ADAPTER = join(FIX, 'adapters', 't5-lora');
const rows = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The T5-style tokenizer of test/support/t5-tokenizer.ts over these words (</s> appended). */
const WORDS = ['hello', 'world', 'translate', 'english', 'to', 'german', 'hallo', 'welt', 'good', 'morning', 'guten', 'morgen'];
const writeTokenizer = (dir: string) => writeT5Tokenizer(dir, WORDS, [['\u2581', -3], [':', -4]]);

let tmp: string;
beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'peft-cli-seq2seq-'));
  writeTokenizer(tmp);
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Rows that copy their source reversed: input_ids [a, b, c, 1] -> labels [c, b, a, 1] (1 = T5's </s>). */
function copyRows(n: number): string {
  return Array.from({ length: n }, (_, i) => {
    const ids = [10 + (i % 7), 20 + ((i * 3) % 5), 30 + ((i * 5) % 4)];
    return JSON.stringify({ input_ids: [...ids, 1], labels: [...ids].reverse().concat(1) });
  }).join('\n');
}

/** n pre-tokenized rows with different sources and one target, [55, 66, </s>], that LoRA learns in a few steps. */
function constRows(n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ input_ids: [10 + i, 20 + (i % 3), 1], labels: [55, 66, 1] })).join('\n');
}

describe('seq2seq data', () => {
  it('source / target columns (named or default), pre-tokenized rows, and errors that name the line or column', () => {
    const csv = join(tmp, 'pairs.csv');
    writeFileSync(csv, 'question,answer\nhello there,hi\n,empty\n');
    expect(() => readSeq2SeqFile(csv, {})).toThrow(/no column "source".*--source-column/);
    expect(() => readSeq2SeqFile(csv, { sourceColumn: 'question', targetColumn: 'answer' })).toThrow(/line 3: column "question" \(the source\) is empty/);
    const ok = readSeq2SeqFile(csv, { sourceColumn: 'question', targetColumn: 'answer', skipBadRows: true });
    expect(ok.map((r) => [r.text, r.target])).toEqual([['hello there', 'hi']]);
    const ids = join(tmp, 'ids.jsonl');
    writeFileSync(ids, `${JSON.stringify({ input_ids: [5, 6, 1], labels: [7, 1] })}\n${JSON.stringify({ input_ids: [5] })}\n`);
    expect(() => readSeq2SeqFile(ids, {})).toThrow(/line 2: pre-tokenized seq2seq rows need "labels"/);
  });

  it('text gets </s> appended to source and target when the tokenizer adds none; truncation keeps it last', () => {
    // A stand-in tokenizer: one id per character code (a = 97 ...), no special tokens.
    const encode = (s: string) => [...s].map((ch) => ch.charCodeAt(0));
    const [e] = encodeExamples([{ text: 'abcdef', target: 'xy' }], { task: 'SEQ_2_SEQ_LM', maxLength: 4, maxTargetLength: 8, encode, eosTokenId: 1 });
    expect(e).toEqual({ ids: [97, 98, 99, 1], labels: [120, 121, 1] });
    // A tokenizer that already appends </s> (T5's post-processor) keeps one.
    const [f] = encodeExamples([{ text: 'ab', target: 'c' }], { task: 'SEQ_2_SEQ_LM', maxLength: 8, encode: (s) => [...encode(s), 1], eosTokenId: 1 });
    expect(f).toEqual({ ids: [97, 98, 1], labels: [99, 1] });
  });
});

describe('train --task seq_2_seq_lm', () => {
  it('a source / target CSV through the T5 tokenizer: </s> once at the end of each side, the loss goes down', async () => {
    const tok = await loadTokenizerFromDir(tmp);
    // "translate english to german: hello" -> translate english to german : hello </s> (ids 5 6 7 8 16 3 1).
    const [e] = encodeExamples([{ text: 'translate english to german: hello', target: 'hallo' }], {
      task: 'SEQ_2_SEQ_LM', maxLength: 64, encode: (x) => tok.encode(x), eosTokenId: tok.eosTokenId,
    });
    expect(e).toEqual({ ids: [5, 6, 7, 8, 16, 3, 1], labels: [9, 1] });
    const pairs = [['hello world', 'hallo welt'], ['good morning', 'guten morgen'], ['hello', 'hallo'], ['good morning world', 'guten morgen welt']];
    const csv = join(tmp, 'translate.csv');
    writeFileSync(csv, `en,de\n${Array.from({ length: 16 }, (_, i) => pairs[i % 4]).map(([a, b]) => `translate english to german: ${a},${b}`).join('\n')}\n`);
    const out = join(tmp, 'text-run');
    await trainCommand(['--model', MODEL, '--tokenizer', tmp, '--data', csv, '--task', 'seq_2_seq_lm', '--source-column', 'en', '--target-column', 'de',
      '--method', 'lora', '--steps', '20', '--lr', '3e-2', '--batch-size', '8', '--out', out]);
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
  }, 60_000);

  it('pre-tokenized rows on t5-tiny with LoRA: the loss goes down; PEFT\'s SEQ_2_SEQ_LM adapter keys and config', async () => {
    const f = join(tmp, 'copy.jsonl');
    writeFileSync(f, copyRows(24));
    const out = join(tmp, 'run');
    await trainCommand([
      '--model', MODEL, '--data', f, '--task', 'seq_2_seq_lm', '--method', 'lora', '--r', '4', '--lora-alpha', '8',
      '--steps', '30', '--lr', '3e-2', '--batch-size', '8', '--validation-split', '0.25', '--eval-steps', '30', '--out', out,
    ]);
    const metrics = rows(join(out, 'metrics.jsonl'));
    const losses = metrics.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(losses.length).toBe(30);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.5);
    const evals = metrics.filter((x) => 'eval_loss' in x);
    expect(evals.map((x) => x.step)).toEqual([30]);
    expect(evals[0].eval_loss).toBeLessThan(losses[0]);
    // Scored from greedy generation (no tokenizer: ids as words).
    expect(evals[0].eval_exact_match).toBeGreaterThanOrEqual(0);
    expect(evals[0].eval_exact_match).toBeLessThanOrEqual(1);
    expect(evals[0].eval_chrf).toBeGreaterThanOrEqual(0);
    expect(evals[0].eval_chrf).toBeLessThanOrEqual(100);
    expect(evals[0].eval_rougeL).toBeGreaterThanOrEqual(0);
    expect(evals[0].eval_rougeL).toBeLessThanOrEqual(1);

    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual([...readSafetensorsFile(join(ADAPTER, 'adapter_model.safetensors')).tensors.keys()].sort());
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(ADAPTER, 'adapter_config.json'), 'utf8'));
    expect(Object.keys(cfg).sort()).toEqual(Object.keys(ref).sort());
    for (const k of ['task_type', 'peft_type', 'modules_to_save', 'target_modules', 'r', 'lora_alpha', 'fan_in_fan_out']) expect(cfg[k]).toEqual(ref[k]);
  }, 120_000);

  it('evaluation generates: a target the model can learn in a few steps scores exact match 1, chrF 100, ROUGE-L 1', async () => {
    const f = join(tmp, 'const.jsonl');
    writeFileSync(f, constRows(16));
    const out = join(tmp, 'const-run');
    await trainCommand(['--model', MODEL, '--data', f, '--task', 'seq_2_seq_lm', '--method', 'lora', '--steps', '40', '--lr', '5e-2',
      '--batch-size', '8', '--validation-split', '0.25', '--eval-steps', '40', '--out', out]);
    const [e] = rows(join(out, 'metrics.jsonl')).filter((x) => 'eval_loss' in x);
    expect(e).toMatchObject({ eval_exact_match: 1, eval_chrf: 100, eval_rougeL: 1 });
  }, 60_000);

  it('--generation-eval-rows N scores generation on the first N validation rows only, the loss on all', async () => {
    const f = join(tmp, 'const-train.jsonl');
    writeFileSync(f, constRows(16));
    // The first validation row has the target the model learns; the other three have a target it never sees.
    const v = join(tmp, 'const-valid.jsonl');
    writeFileSync(v, [[55, 66, 1], [77, 88, 1], [77, 88, 1], [77, 88, 1]].map((labels, i) => JSON.stringify({ input_ids: [40 + i, 21, 1], labels })).join('\n'));
    const run = async (name: string, extra: string[]) => {
      const out = join(tmp, name);
      await trainCommand(['--model', MODEL, '--data', f, '--validation', v, '--task', 'seq_2_seq_lm', '--method', 'lora', '--steps', '40', '--lr', '5e-2',
        '--batch-size', '8', '--eval-steps', '40', '--out', out, ...extra]);
      return rows(join(out, 'metrics.jsonl')).filter((x) => 'eval_loss' in x)[0];
    };
    const one = await run('gen-1', ['--generation-eval-rows', '1']);
    const all = await run('gen-all', []);
    expect(one.eval_exact_match).toBe(1);
    expect(all.eval_exact_match).toBe(0.25);
    // The loss is over all four rows either way.
    expect(one.eval_loss).toBeCloseTo(all.eval_loss, 4);
    await expect(trainCommand(['--model', MODEL, '--data', f, '--task', 'seq_2_seq_lm', '--generation-eval-rows', '0', '--out', join(tmp, 'gen-0')]))
      .rejects.toThrow(/--generation-eval-rows must be >= 1/);
  }, 90_000);

  it('prompt tuning trains the encoder prompt and writes PEFT\'s t5-prompt layout (8 rows, num_transformer_submodules 2)', async () => {
    const f = join(tmp, 'prompt.jsonl');
    writeFileSync(f, copyRows(8));
    const out = join(tmp, 'prompt-run');
    await trainCommand(['--model', MODEL, '--data', f, '--task', 'seq_2_seq_lm', '--method', 'prompt_tuning', '--num-virtual-tokens', '4',
      '--steps', '8', '--lr', '3e-2', '--batch-size', '4', '--out', out]);
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)));
    const ref = join(FIX, 'adapters', 't5-prompt');
    const got = readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors;
    expect([...got.keys()]).toEqual(['prompt_embeddings']);
    expect(got.get('prompt_embeddings')!.shape).toEqual([8, 64]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    const want = JSON.parse(readFileSync(join(ref, 'adapter_config.json'), 'utf8'));
    expect(Object.keys(cfg).sort()).toEqual(Object.keys(want).sort());
    for (const k of ['task_type', 'peft_type', 'num_transformer_submodules', 'num_virtual_tokens', 'token_dim', 'num_layers', 'num_attention_heads']) expect(cfg[k]).toEqual(want[k]);
  }, 60_000);

  it('P-tuning (LSTM encoder) trains on T5 and writes PEFT\'s P_TUNING layout: 2P encoded rows, num_transformer_submodules 2', async () => {
    const f = join(tmp, 'ptuning.jsonl');
    writeFileSync(f, copyRows(8));
    const out = join(tmp, 'ptuning-run');
    await trainCommand(['--model', MODEL, '--data', f, '--task', 'seq_2_seq_lm', '--method', 'p_tuning', '--num-virtual-tokens', '4',
      '--encoder-reparameterization-type', 'LSTM', '--encoder-hidden-size', '32', '--steps', '8', '--lr', '1e-2', '--batch-size', '4', '--out', out]);
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)));
    const got = readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors;
    expect([...got.keys()]).toEqual(['prompt_embeddings']);
    expect(got.get('prompt_embeddings')!.shape).toEqual([8, 64]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'P_TUNING', task_type: 'SEQ_2_SEQ_LM', num_transformer_submodules: 2, num_virtual_tokens: 4, token_dim: 64,
      encoder_reparameterization_type: 'LSTM', encoder_hidden_size: 32, num_layers: 2, num_attention_heads: 4 });
  }, 60_000);

  it('flags of another task are refused; inspect --task seq_2_seq_lm gives T5ForConditionalGeneration', async () => {
    const f = join(tmp, 'copy2.jsonl');
    writeFileSync(f, copyRows(4));
    await expect(trainCommand(['--model', join(FIX, 'models', 'gpt2-tiny'), '--data', f, '--source-column', 'x', '--steps', '1', '--out', join(tmp, 'bad')]))
      .rejects.toThrow(/--source-column.*are for --task seq_2_seq_lm/);
    await expect(trainCommand(['--model', join(FIX, 'models', 'gpt2-tiny'), '--data', f, '--generation-eval-rows', '4', '--steps', '1', '--out', join(tmp, 'bad')]))
      .rejects.toThrow(/--generation-eval-rows are for --task seq_2_seq_lm/);
    const out = join(tmp, 'tree.json');
    await inspectCommand([MODEL, '--out', out]);
    expect(JSON.parse(readFileSync(out, 'utf8')).class_name).toBe('T5ForConditionalGeneration');
  });

  it('logits --task seq_2_seq_lm with --labels or --decoder-input-ids equal transformers (and the loss with labels); targets lists q / v', async () => {
    const ref = fixtureTensors('models', 't5-tiny', 'reference.safetensors');
    const mat = (k: string) => {
      const t = ref.get(k)!;
      const d = [...t.data].map(Number);
      return Array.from({ length: t.shape[0] }, (_, i) => d.slice(i * t.shape[1], (i + 1) * t.shape[1]).join(',')).join(';');
    };
    for (const [flag, key] of [['--labels', 'labels'], ['--decoder-input-ids', 'decoder_input_ids']]) {
      const out = join(tmp, `logits-${key}.safetensors`);
      await logitsCommand(['--model', MODEL, '--input-ids', mat('input_ids'), '--attention-mask', mat('attention_mask'), flag, mat(key), '--out', out]);
      const got = readSafetensorsFile(out).tensors;
      expect(got.get('logits')!.shape).toEqual([2, 5, 1000]);
      expect(maxAbsDiff(got.get('logits')!.data, ref.get('logits')!.data)).toBeLessThan(1e-4);
      if (key === 'labels') expect(Math.abs(got.get('loss')!.data[0] - ref.get('loss')!.data[0])).toBeLessThan(1e-4);
      else expect(got.has('loss')).toBe(false);
    }
    await expect(logitsCommand(['--model', MODEL, '--input-ids', '5,6', '--out', join(tmp, 'x.safetensors')])).rejects.toThrow(/--decoder-input-ids or --labels/);
    const t = join(tmp, 'targets.json');
    await targetsCommand([MODEL, '--method', 'lora', '--out', t]);
    const rep = JSON.parse(readFileSync(t, 'utf8'));
    expect(JSON.stringify(rep)).toContain('decoder.block.1.layer.1.EncDecAttention.v');
  });
});

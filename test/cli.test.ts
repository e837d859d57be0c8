/**
 * The command line (src/cli): real subprocess runs for exit codes and one-line errors, in-process runs of the
 * command functions for the rest. Results are checked against the PEFT fixtures in test/fixtures.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectCommand } from '../src/cli/inspect';
import { logitsCommand } from '../src/cli/logits';
import { main } from '../src/cli/main';
import { targetsFor, TARGETS } from '../src/cli/targets';
import { parseArgv } from '../src/cli/common';
import { trainCommand } from '../src/cli/train';
import { parsePeftConfig } from '../src/engine/peft/config';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { writeSafetensors } from '../src/engine/io/safetensors';
import { buildModel } from '../src/engine/models';
import { FIX, maxAbsDiff } from './helpers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const MODELS = join(FIX, 'models');
const GPT2 = join(MODELS, 'gpt2-tiny');
const BERT = join(MODELS, 'bert-tiny-seqcls');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `tsx src/cli/main.ts ...args` as a real subprocess (what `npm run cli --` runs). */
function cli(args: string[], timeout = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, timeout, env: { ...process.env, PEFT_STUDIO_DEBUG: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The error line of a failed run; there must be exactly one, and no stack trace. */
function errorLine(r: Run): string {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(lines).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return lines[0];
}

const rows = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

let tmp: string;
/** A tiny repetitive pre-tokenized dataset (ids inside the fixtures' 1000-token vocabulary). */
let clmData: string;
let clsData: string;

beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'peft-cli-'));
  clmData = join(tmp, 'clm.jsonl');
  writeFileSync(clmData, Array.from({ length: 12 }, (_, i) => JSON.stringify({ input_ids: [5, 6, 7, 8, 9, 10, 11, 12].slice(i % 3) })).join('\n'));
  clsData = join(tmp, 'cls.jsonl');
  writeFileSync(
    clsData,
    Array.from({ length: 16 }, (_, i) => JSON.stringify({ input_ids: i % 2 ? [1, 20, 21, 22, 2] : [1, 30, 31, 32, 2], label: i % 2 })).join('\n'),
  );
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('inspect', () => {
  it('writes named_modules() of gpt2-tiny and its 172288 parameters (subprocess)', async () => {
    const out = join(tmp, 'tree.json');
    const r = await cli(['inspect', GPT2, '--out', out]);
    expect(r.code).toBe(0);
    const tree = JSON.parse(readFileSync(out, 'utf8'));
    expect(tree.modules).toEqual(JSON.parse(readFileSync(join(GPT2, 'named_modules.json'), 'utf8')));
    expect(tree.modules[0].name).toBe('');
    expect(tree.total_params).toBe(172288);
  });

  it('works on a folder holding only config.json, for every fixture', async () => {
    for (const [name, total] of [['gpt2-tiny', 172288], ['llama-tiny', 202048], ['bert-tiny-seqcls', 143682], ['gpt2-tiny-seqcls', 172416]] as const) {
      const dir = join(tmp, `config-only-${name}`);
      mkdirSync(dir);
      copyFileSync(join(MODELS, name, 'config.json'), join(dir, 'config.json'));
      const out = join(dir, 'tree.json');
      await inspectCommand([dir, '--out', out]);
      const tree = JSON.parse(readFileSync(out, 'utf8'));
      expect(tree.total_params, name).toBe(total);
      expect(tree.modules, name).toEqual(JSON.parse(readFileSync(join(MODELS, name, 'named_modules.json'), 'utf8')));
    }
  });

  it('--task seq_cls gives the classification tree', async () => {
    const out = join(tmp, 'tree-seqcls.json');
    await inspectCommand([GPT2, '--task', 'seq_cls', '--out', out]);
    const tree = JSON.parse(readFileSync(out, 'utf8'));
    expect(tree.class_name).toBe('GPT2ForSequenceClassification');
    expect(tree.modules.at(-1).name).toBe('score');
  });
});

describe('targets', () => {
  const cases = JSON.parse(readFileSync(join(FIX, 'target_modules.json'), 'utf8')).cases as any[];

  /** PEFT LoraConfig kwargs -> CLI flags. */
  function flags(k: Record<string, any>): string[] {
    const a: string[] = ['--r', String(k.r), '--lora-alpha', String(k.lora_alpha), '--lora-dropout', String(k.lora_dropout)];
    const t = k.target_modules;
    if (typeof t === 'string') a.push(t === 'all-linear' ? '--target-modules' : '--target-regex', t);
    else if (t) a.push('--target-modules', t.join(','));
    const ex = k.exclude_modules;
    if (typeof ex === 'string') a.push('--exclude-regex', ex);
    else if (ex) a.push('--exclude-modules', ex.join(','));
    if (k.layers_to_transform !== undefined) a.push('--layers-to-transform', [k.layers_to_transform].flat().join(','));
    if (k.layers_pattern) a.push('--layers-pattern', k.layers_pattern);
    a.push('--task-type', k.task_type ?? 'none');
    return a;
  }

  it.each(cases.filter((c) => !c.error).map((c) => [c.id, c]))('%s matches PEFT', async (_id, c: any) => {
    const res = await targetsFor(parseArgv(TARGETS, [join(MODELS, c.model), ...flags(c.lora_config)]));
    expect(res.matched).toEqual(c.matched_modules);
    expect(res.trainable).toBe(c.trainable_params);
    expect(res.all).toBe(c.all_params);
    expect(res.saved_target_modules).toEqual(c.saved_target_modules);
  });

  it('writes targets.json and prints the trainable line (subprocess, config.json only)', async () => {
    const dir = join(tmp, 'gpt2-config-only');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(GPT2, 'config.json'), join(dir, 'config.json'));
    const out = join(tmp, 'targets.json');
    const r = await cli(['targets', dir, '--target-modules', 'all-linear', '--r', '4', '--lora-alpha', '8', '--out', out]);
    expect(r.code).toBe(0);
    const c = cases.find((x) => x.id === 'gpt2-all-linear');
    const res = JSON.parse(readFileSync(out, 'utf8'));
    expect(res.matched).toEqual(c.matched_modules);
    expect([res.trainable, res.all]).toEqual([c.trainable_params, c.all_params]);
    expect(r.stdout).toContain('trainable params: 8,192 || all params: 180,480 || trainable%: 4.5390');
  });

  it('prompt tuning counts the prompt embedding', async () => {
    const res = await targetsFor(parseArgv(TARGETS, [GPT2, '--method', 'prompt_tuning', '--num-virtual-tokens', '4']));
    expect(res).toMatchObject({ matched: [], trainable: 256, all: 172288 + 256 });
  });

  it('no match: exit 1 with PEFT\'s message on one line (subprocess)', async () => {
    const r = await cli(['targets', GPT2, '--target-modules', 'does_not_exist']);
    expect(r.code).toBe(1);
    const c = cases.find((x) => x.id === 'gpt2-no-match-list');
    expect(errorLine(r)).toBe(`error: ${c.error.message}`);
  });
});

describe('logits', () => {
  const ref = readSafetensorsFile(join(GPT2, 'reference.safetensors')).tensors;
  const matrix = (name: string) => {
    const t = ref.get(name)!;
    const d = Array.from(t.data as ArrayLike<number>, Number);
    const [B, T] = t.shape;
    return Array.from({ length: B }, (_, b) => d.slice(b * T, (b + 1) * T).join(',')).join(';');
  };

  it('gpt2-tiny + gpt2-lora reproduces PEFT\'s logits (subprocess)', async () => {
    const out = join(tmp, 'logits.safetensors');
    const r = await cli([
      'logits', '--model', GPT2, '--adapter', join(FIX, 'adapters', 'gpt2-lora'),
      '--input-ids', matrix('input_ids'), '--attention-mask', matrix('attention_mask'), '--out', out,
    ]);
    expect(r.code).toBe(0);
    const got = readSafetensorsFile(out).tensors.get('logits')!;
    const want = readSafetensorsFile(join(FIX, 'adapters', 'gpt2-lora', 'expected.safetensors')).tensors.get('logits')!;
    expect(got.dtype).toBe('F32');
    expect(got.shape).toEqual([2, 7, 1000]);
    expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4);
  });

  it.each([
    ['gpt2-prompt', 'gpt2-tiny', [2, 11, 1000]],
    ['bert-seqcls-lora', 'bert-tiny-seqcls', [2, 2]],
  ])('%s on %s gives PEFT\'s logits, shaped %j', async (adapter, model, shape) => {
    const out = join(tmp, `logits-${adapter}.safetensors`);
    await logitsCommand([
      '--model', join(MODELS, model), '--adapter', join(FIX, 'adapters', adapter),
      '--input-ids', matrix('input_ids'), '--attention-mask', matrix('attention_mask'), '--out', out,
    ]);
    const got = readSafetensorsFile(out).tensors.get('logits')!;
    expect(got.shape).toEqual(shape);
    const want = readSafetensorsFile(join(FIX, 'adapters', adapter, 'expected.safetensors')).tensors.get('logits')!;
    expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4);
  });

  it('without an adapter gives the base model\'s logits; refuses an adapter for another model', async () => {
    const out = join(tmp, 'logits-base.safetensors');
    await logitsCommand(['--model', GPT2, '--input-ids', matrix('input_ids'), '--attention-mask', matrix('attention_mask'), '--out', out, '--backend', 'cpu']);
    expect(maxAbsDiff(readSafetensorsFile(out).tensors.get('logits')!.data, ref.get('logits')!.data)).toBeLessThan(1e-4);
    await expect(logitsCommand(['--model', GPT2, '--adapter', join(FIX, 'adapters', 'llama-lora'), '--input-ids', '1,2', '--out', out]))
      .rejects.toThrow(/not found in the base model/);
    await useNodeBackend('wasm');
  });
});

describe('train', () => {
  it('causal_lm + LoRA on gpt2-tiny: adapter files and a decreasing loss over 30 steps (subprocess)', async () => {
    const out = join(tmp, 'run-clm');
    const r = await cli([
      'train', '--model', GPT2, '--data', clmData, '--task', 'causal_lm', '--method', 'lora', '--target-modules', 'c_attn,c_proj',
      '--r', '4', '--lora-alpha', '8', '--steps', '30', '--lr', '2e-2', '--batch-size', '4', '--validation-split', '0.2', '--eval-steps', '15', '--out', out,
    ], 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('trainable params: 5,632 || all params: 177,920');
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'CAUSAL_LM', target_modules: ['c_attn', 'c_proj'], base_model_name_or_path: GPT2 });
    const w = readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors;
    expect(w.size).toBe(12);
    const m = rows(join(out, 'metrics.jsonl'));
    const steps = m.filter((x) => 'loss' in x);
    expect(steps).toHaveLength(30);
    expect(Object.keys(steps[0]).sort()).toEqual(['epoch', 'grad_norm', 'loss', 'lr', 'step', 'tokens_per_sec']);
    expect(steps.map((x) => x.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // 12 rows, 20% held out -> 10 training rows = 3 batches of 4 per epoch.
    expect(steps.slice(0, 4).map((x) => x.epoch)).toEqual([0.3333, 0.6667, 1, 1.333]);
    const losses = steps.map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.2);
    const evals = m.filter((x) => 'eval_loss' in x);
    expect(evals.map((x) => x.step)).toEqual([15, 30]);
    expect(evals[1].eval_loss).toBeLessThan(evals[0].eval_loss);
  });

  it('seq_cls + LoRA on bert-tiny-seqcls: PEFT files with the head, labels.json, eval rows with F1', async () => {
    const out = join(tmp, 'run-cls');
    await trainCommand([
      '--model', BERT, '--data', clsData, '--validation', clsData, '--task', 'seq_cls', '--method', 'lora', '--r', '4',
      '--steps', '30', '--lr', '1e-2', '--batch-size', '4', '--out', out, '--base-model-name', 'models/bert-tiny-seqcls',
    ]);
    const cfg = parsePeftConfig(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peftType: 'LORA', taskType: 'SEQ_CLS', modulesToSave: ['classifier', 'score'], baseModelNameOrPath: 'models/bert-tiny-seqcls' });
    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual([...readSafetensorsFile(join(FIX, 'adapters', 'bert-seqcls-lora', 'adapter_model.safetensors')).tensors.keys()].sort());
    expect(JSON.parse(readFileSync(join(out, 'labels.json'), 'utf8')).id2label).toEqual({ 0: '0', 1: '1' });
    const m = rows(join(out, 'metrics.jsonl'));
    const losses = m.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
    // The shared default evaluates every 10 steps (src/engine/train/defaults.ts).
    const ev = m.filter((x) => 'eval_loss' in x);
    expect(ev.map((x) => x.step)).toEqual([10, 20, 30]);
    expect(Object.keys(ev[0]).sort()).toEqual(['eval_accuracy', 'eval_f1', 'eval_loss', 'step']);
  });

  it('prompt tuning on gpt2-tiny: prompt_embeddings and PEFT\'s config', async () => {
    const out = join(tmp, 'run-prompt');
    await trainCommand([
      '--model', GPT2, '--data', clmData, '--task', 'causal_lm', '--method', 'prompt_tuning', '--num-virtual-tokens', '4',
      '--steps', '30', '--lr', '3e-1', '--batch-size', '4', '--max-grad-norm', '0', '--out', out,
    ]);
    const w = readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors;
    expect([...w.keys()]).toEqual(['prompt_embeddings']);
    expect(w.get('prompt_embeddings')!.shape).toEqual([4, 64]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 4, token_dim: 64, task_type: 'CAUSAL_LM' });
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(losses).toHaveLength(30);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
  });

  it('AdaLoRA without --total-step lays its budget schedule over the run: --steps, or the epochs over the data', async () => {
    const steps = join(tmp, 'run-ada-steps');
    await trainCommand(['--model', GPT2, '--data', clmData, '--method', 'adalora', '--target-modules', 'c_attn', '--steps', '5', '--batch-size', '4', '--out', steps]);
    expect(JSON.parse(readFileSync(join(steps, 'adapter_config.json'), 'utf8')).total_step).toBe(5);
    // 12 rows, batch 4, accumulation 2: ceil(ceil(12 / 4) / 2) = 2 optimizer steps per epoch, 3 epochs.
    const epochs = join(tmp, 'run-ada-epochs');
    await trainCommand(['--model', GPT2, '--data', clmData, '--method', 'adalora', '--target-modules', 'c_attn', '--epochs', '3', '--batch-size', '4', '--grad-accum', '2', '--validation-split', '0', '--out', epochs]);
    expect(JSON.parse(readFileSync(join(epochs, 'adapter_config.json'), 'utf8')).total_step).toBe(6);
    expect(rows(join(epochs, 'metrics.jsonl'))).toHaveLength(6);
    // A schedule that does not fit the run is PEFT's error, with the run's own length.
    await expect(trainCommand(['--model', GPT2, '--data', clmData, '--method', 'adalora', '--target-modules', 'c_attn', '--steps', '4', '--tinit', '4', '--out', join(tmp, 'x')]))
      .rejects.toThrow(/tinit/);
  });

  it('text data: CSV string labels map to sorted ids with a tokenizer (--tokenizer)', async () => {
    // A 4096-token GPT-2 that fits the built-in sotu-gpt2 tokenizer, with random weights.
    const dir = join(tmp, 'gpt2-4096');
    mkdirSync(dir);
    const config = { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 4096, n_embd: 16, n_layer: 1, n_head: 2, n_positions: 64 };
    const model = buildModel(config, new Map(), { initMissing: 'all' });
    const tensors = new Map([...model.params].filter(([k]) => !(k in model.tied)).map(([k, t]) => [k, { shape: t.shape, data: t.dataSync() as Float32Array }]));
    model.dispose();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
    const csv = join(tmp, 'reviews.csv');
    writeFileSync(csv, 'review,sentiment\n"great, loved it",pos\nawful,neg\n"fine I guess",meh\nbest ever,pos\n');
    const out = join(tmp, 'run-csv');
    await trainCommand([
      '--model', dir, '--tokenizer', join(ROOT, 'public', 'models', 'sotu-gpt2'), '--data', csv, '--task', 'seq_cls',
      '--text-column', 'review', '--label-column', 'sentiment', '--target-modules', 'c_attn', '--steps', '2', '--batch-size', '2', '--out', out,
    ]);
    expect(JSON.parse(readFileSync(join(out, 'labels.json'), 'utf8')).label2id).toEqual({ meh: 0, neg: 1, pos: 2 });
    // 4 rows: one held out by the default split, evaluated at the end after the 2 steps.
    expect(rows(join(out, 'metrics.jsonl')).map((x) => ('eval_loss' in x ? `eval@${x.step}` : x.step))).toEqual([1, 2, 'eval@2']);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
  });
});

describe('bad input: non-zero exit and a one-line message', () => {
  it('missing model folder (subprocess)', async () => {
    const r = await cli(['train', '--model', join(tmp, 'no-such-model'), '--data', clmData, '--out', join(tmp, 'x')]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/model folder .*no-such-model not found/);
  });

  it('bad --r: not an integer (usage, exit 2) or not positive (PEFT\'s message, exit 1) (subprocess)', async () => {
    const a = await cli(['targets', GPT2, '--r', 'abc']);
    expect(a.code).toBe(2);
    expect(errorLine(a)).toBe('error: --r must be an integer, got "abc"');
    const b = await cli(['targets', GPT2, '--r', '0']);
    expect(b.code).toBe(1);
    expect(errorLine(b)).toBe('error: `r` should be a positive integer value but the value passed is 0');
  });

  it('malformed JSONL line: the message names the file and line (subprocess)', async () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"input_ids": [1, 2, 3]}\n\n{"input_ids": [1, 2\n{"input_ids": [4, 5]}\n');
    const r = await cli(['train', '--model', GPT2, '--data', bad, '--steps', '1', '--out', join(tmp, 'x')]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/bad\.jsonl line 3: invalid JSON/);
  });

  it('unknown command and unknown option (subprocess): exit 2', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/unknown command "frobnicate"/);
    const o = await cli(['inspect', GPT2, '--bogus']);
    expect(o.code).toBe(2);
    expect(errorLine(o)).toMatch(/unknown option --bogus/);
  });

  it('--help works for every command; errors in-process resolve to exit codes', async () => {
    for (const c of ['inspect', 'targets', 'logits', 'train', 'bench']) expect(await main([c, '--help']), c).toBe(0);
    const bad = join(tmp, 'oob.jsonl');
    writeFileSync(bad, '{"input_ids": [1, 2]}\n{"input_ids": [1, 5000]}\n');
    await expect(trainCommand(['--model', GPT2, '--data', bad, '--out', join(tmp, 'x')])).rejects.toThrow(/oob\.jsonl line 2: token id 5000 is outside/);
    await expect(trainCommand(['--model', BERT, '--data', clmData, '--task', 'seq_cls', '--out', join(tmp, 'x')])).rejects.toThrow(/no column "label"/);
    await expect(trainCommand(['--model', GPT2, '--data', join(tmp, 'nope.jsonl'), '--out', join(tmp, 'x')])).rejects.toThrow(/nope\.jsonl not found/);
    expect(await main(['logits', '--model', GPT2, '--input-ids', '1,2;3', '--out', join(tmp, 'x.safetensors')])).toBe(2);
    expect(await main(['train', '--model', GPT2, '--data', clmData, '--method', 'lora', '--num-virtual-tokens', '3', '--out', join(tmp, 'x')])).toBe(2);
  });
});

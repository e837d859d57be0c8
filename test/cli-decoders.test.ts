/**
 * The command line on OPT, GPT-NeoX and BLOOM (in-process command functions): inspect gives named_modules(),
 * targets PEFT's defaults and numbers (target_modules_arch.json), logits PEFT's with a PEFT-saved adapter, and
 * train writes an adapter with PEFT's keys while the loss goes down, seq_cls included.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgv } from '../src/cli/common';
import { inspectCommand } from '../src/cli/inspect';
import { logitsCommand } from '../src/cli/logits';
import { targetsFor, TARGETS } from '../src/cli/targets';
import { trainCommand } from '../src/cli/train';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { FIX, maxAbsDiff } from './helpers';

const MODELS = join(FIX, 'models');
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));
const rows = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const CASES = [
  { model: 'opt-tiny', adapter: 'opt-lora', total: 139392, defaults: 'opt-q-v' },
  { model: 'gptneox-tiny', adapter: 'gptneox-lora', total: 228096, defaults: 'gptneox-defaults' },
  { model: 'bloom-tiny', adapter: 'bloom-lora', total: 164224, defaults: 'bloom-defaults' },
];
const cases: any[] = [...readJson('target_modules_more.json').cases, ...readJson('target_modules_arch.json').cases];

let tmp: string;
let clmData: string;
let clsData: string;

beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'peft-cli-dec-'));
  clmData = join(tmp, 'clm.jsonl');
  writeFileSync(clmData, Array.from({ length: 12 }, (_, i) => JSON.stringify({ input_ids: [5, 6, 7, 8, 9, 10, 11, 12].slice(i % 3) })).join('\n'));
  clsData = join(tmp, 'cls.jsonl');
  writeFileSync(clsData, Array.from({ length: 16 }, (_, i) => JSON.stringify({ input_ids: i % 2 ? [20, 21, 22, 23] : [30, 31, 32, 33], label: i % 2 })).join('\n'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function matrix(model: string, name: string): string {
  const t = readSafetensorsFile(join(MODELS, model, 'reference.safetensors')).tensors.get(name)!;
  const d = Array.from(t.data as ArrayLike<number>, Number);
  const [B, T] = t.shape;
  return Array.from({ length: B }, (_, b) => d.slice(b * T, (b + 1) * T).join(',')).join(';');
}

describe.each(CASES)('$model', ({ model, adapter, total, defaults }) => {
  const dir = join(MODELS, model);

  it('inspect: named_modules() and the parameter count', async () => {
    const out = join(tmp, `${model}-tree.json`);
    await inspectCommand([dir, '--out', out]);
    const tree = JSON.parse(readFileSync(out, 'utf8'));
    expect(tree.modules).toEqual(readJson(`models/${model}/named_modules.json`));
    expect(tree.total_params).toBe(total);
  });

  it('targets: PEFT\'s default target_modules and numbers', async () => {
    const c = cases.find((x) => x.id === defaults);
    const args = ['--r', '4', '--lora-alpha', '8', '--task-type', 'CAUSAL_LM'];
    if (c.config.target_modules) args.push('--target-modules', c.config.target_modules.join(','));
    const res = await targetsFor(parseArgv(TARGETS, [dir, ...args]));
    expect(res.matched).toEqual(c.matched_modules);
    expect([res.trainable, res.all]).toEqual([c.trainable_params, c.all_params]);
    expect(res.saved_target_modules).toEqual(c.saved_target_modules);
  });

  it('logits: the PEFT-saved adapter gives PEFT\'s logits', async () => {
    const out = join(tmp, `${model}-logits.safetensors`);
    await logitsCommand([
      '--model', dir, '--adapter', join(FIX, 'adapters', adapter),
      '--input-ids', matrix(model, 'input_ids'), '--attention-mask', matrix(model, 'attention_mask'), '--out', out,
    ]);
    const got = readSafetensorsFile(out).tensors.get('logits')!;
    const want = readSafetensorsFile(join(FIX, 'adapters', adapter, 'expected.safetensors')).tensors.get('logits')!;
    expect(got.shape).toEqual([2, 7, 1000]);
    expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4);
  });

  it('train: causal_lm LoRA on the defaults writes PEFT\'s keys and the loss goes down', async () => {
    const out = join(tmp, `${model}-clm`);
    await trainCommand(['--model', dir, '--data', clmData, '--task', 'causal_lm', '--method', 'lora', '--r', '4', '--lora-alpha', '8',
      '--steps', '20', '--lr', '2e-2', '--batch-size', '4', '--out', out]);
    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual([...readSafetensorsFile(join(FIX, 'adapters', adapter, 'adapter_model.safetensors')).tensors.keys()].sort());
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.2);
  });

  it('train: seq_cls builds the *ForSequenceClassification head and saves it as PEFT does', async () => {
    const out = join(tmp, `${model}-cls`);
    await trainCommand(['--model', dir, '--data', clsData, '--task', 'seq_cls', '--method', 'lora', '--r', '4', '--steps', '20',
      '--lr', '1e-2', '--batch-size', '4', '--pad-token-id', '0', '--out', out]);
    const keys = [...readSafetensorsFile(join(out, 'adapter_model.safetensors')).tensors.keys()].sort();
    const lora = [...readSafetensorsFile(join(FIX, 'adapters', adapter, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys).toEqual([...lora, 'base_model.model.score.weight'].sort());
    const losses = rows(join(out, 'metrics.jsonl')).filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
  });
});

it('seq_cls on a decoder without a pad token cannot batch: the error says to set one', async () => {
  await expect(trainCommand(['--model', join(MODELS, 'gptneox-tiny'), '--data', clsData, '--task', 'seq_cls', '--method', 'lora', '--steps', '1',
    '--batch-size', '4', '--out', join(tmp, 'neox-no-pad')])).rejects.toThrow(/GPTNeoXForSequenceClassification needs pad_token_id/);
});

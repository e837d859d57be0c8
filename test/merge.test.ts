/**
 * Merging adapters into the base weights (PEFT's merge_and_unload + save_pretrained): tensor by tensor against
 * PEFT's own merged.safetensors, merged logits against PEFT's unmerged logits for every mergeable method, the
 * merged folder loading back as a plain model, half-precision output, sharding, and the CLI command.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../src/engine/adapter/import';
import { mergedConfig, writeMergedModel } from '../src/engine/adapter/merge';
import { f32ToBf16Bits, f32ToF16Bits, type FloatDType } from '../src/engine/io/float-encode';
import { loadModelDir, readSafetensorsFile } from '../src/engine/io/node-files';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { parseHeader, readSafetensors, writeSafetensors } from '../src/engine/io/safetensors';
import { parseShardSize, planShards } from '../src/engine/io/safetensors-stream';
import { buildModel } from '../src/engine/models';
import { main } from '../src/cli/main';
import { nodeFolder } from '../src/cli/merge';
import { FIX, fixtureModel, fixtureTensors, maxAbsDiff, rejection, toTensor } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'merge-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function adapter(id: string, config?: Record<string, unknown>, weights?: Uint8Array) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: config ?? readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: weights ?? new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  };
}

async function merge(id: string, model: string, out: string, o: { dtype?: FloatDType; maxShardSize?: number; src?: ReturnType<typeof adapter> } = {}) {
  const base = fixtureModel(model, JSON.parse(readFileSync(join(FIX, 'adapters', id, 'adapter_config.json'), 'utf8')).task_type);
  const peft = loadAdapter(base, o.src ?? adapter(id));
  try {
    return await writeMergedModel(peft, { dtype: o.dtype ?? 'F32', maxShardSize: o.maxShardSize, open: nodeFolder(out), baseModelName: `models/${model}`, adapterName: id });
  } finally {
    peft.dispose();
    base.dispose();
  }
}

/** Logits of a model folder (as the engine's normal loader reads it) on the fixture's reference inputs. */
function logitsOf(dir: string, refModel: string): Float32Array {
  const { config, tensors } = loadModelDir(dir);
  const m = buildModel(config, tensors);
  expect(m.report.initialised).toEqual([]);
  const ref = fixtureTensors('models', refModel, 'reference.safetensors');
  const out = tf.tidy(() => m.forward({ inputIds: toTensor(ref.get('input_ids')!) as tf.Tensor2D, attentionMask: toTensor(ref.get('attention_mask')!) as tf.Tensor2D }).dataSync() as Float32Array);
  m.dispose();
  return out;
}

const MERGEABLE: { id: string; model: string }[] = [
  { id: 'gpt2-lora', model: 'gpt2-tiny' },
  { id: 'gpt2-lora-rslora-layer1', model: 'gpt2-tiny' },
  { id: 'gpt2-seqcls-lora', model: 'gpt2-tiny-seqcls' },
  { id: 'llama-lora', model: 'llama-tiny' },
  { id: 'bert-seqcls-lora', model: 'bert-tiny-seqcls' },
  { id: 'gpt2-dora', model: 'gpt2-tiny' },
  { id: 'llama-dora', model: 'llama-tiny' },
  { id: 'gpt2-ia3', model: 'gpt2-tiny' },
  { id: 'llama-ia3', model: 'llama-tiny' },
  { id: 'bert-seqcls-ia3', model: 'bert-tiny-seqcls' },
  { id: 'gpt2-adalora', model: 'gpt2-tiny' },
  { id: 'llama-adalora', model: 'llama-tiny' },
  { id: 'gpt2-adalora-trained', model: 'gpt2-tiny' },
  { id: 'llama-adalora-trained', model: 'llama-tiny' },
];

describe('merge', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it.each([
    { id: 'gpt2-lora', model: 'gpt2-tiny', changed: 6 },
    { id: 'llama-lora', model: 'llama-tiny', changed: 14 },
  ])('$id: the merged weights are PEFT\'s merge_and_unload tensor by tensor (1e-6)', async ({ id, model, changed }) => {
    const out = join(tmp, `${id}-exact`);
    const before = tf.memory().numTensors;
    const res = await merge(id, model, out);
    expect(tf.memory().numTensors).toBe(before); // every merged tensor was disposed once written
    expect(res.files).toEqual(['model.safetensors']);
    const ours = readSafetensorsFile(join(out, 'model.safetensors'));
    const peft = readSafetensorsFile(join(FIX, 'adapters', id, 'merged.safetensors'));
    const base = readSafetensorsFile(join(FIX, 'models', model, 'model.safetensors')).tensors;
    expect([...ours.tensors.keys()].sort()).toEqual([...peft.tensors.keys()].sort());
    expect(ours.metadata).toEqual(peft.metadata);
    let differ = 0;
    for (const [k, t] of peft.tensors) {
      const o = ours.tensors.get(k)!;
      expect(o.dtype).toBe('F32');
      expect(o.shape).toEqual(t.shape);
      expect(maxAbsDiff(o.data as Float32Array, t.data as Float32Array)).toBeLessThan(1e-6);
      if (maxAbsDiff(base.get(k)!.data as Float32Array, t.data as Float32Array) > 0) differ++;
    }
    expect(differ).toBe(changed);
    // The data layout is the safetensors crate's, as save_pretrained writes it: same header bytes.
    const hb = (p: string) => { const b = readFileSync(p); return b.subarray(0, 8 + Number(b.readBigUInt64LE(0))).toString(); };
    expect(hb(join(out, 'model.safetensors'))).toBe(hb(join(FIX, 'adapters', id, 'merged.safetensors')));
  });

  it.each(MERGEABLE)('$id: the merged model, loaded back as a plain model, gives the adapter\'s PEFT logits (1e-4)', async ({ id, model }) => {
    const out = join(tmp, id);
    await merge(id, model, out);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const baseConfig = JSON.parse(readFileSync(join(FIX, 'models', model, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(baseConfig.architectures);
    expect(config.torch_dtype).toBe('float32');
    const expected = fixtureTensors('adapters', id, 'expected.safetensors').get('logits')!;
    expect(maxAbsDiff(logitsOf(out, model), expected.data as Float32Array)).toBeLessThan(1e-4);
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain(`base_model: "models/${model}"`);
    expect(card).toContain('"peft_type":');
  });

  it('a classification config without pad_token_id gets eos as its pad (as the studio trains), and the head\'s size', () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny-seqcls'));
    delete config.pad_token_id;
    const m = buildModel(config, tensors, { task: 'SEQ_CLS' });
    const c = mergedConfig(m, 'F16', ['ham', 'spam']);
    expect(c).toMatchObject({ pad_token_id: config.eos_token_id, num_labels: 2, id2label: { 0: 'ham', 1: 'spam' }, label2id: { ham: 0, spam: 1 }, torch_dtype: 'float16', architectures: ['GPT2ForSequenceClassification'] });
    m.dispose();
  });

  it('rank_pattern and alpha_pattern set each module\'s rank and scaling in the merge (W + alpha/r (B A)^T)', async () => {
    const files = fixtureTensors('adapters', 'gpt2-lora', 'adapter_model.safetensors');
    const cfg = JSON.parse(readFileSync(join(FIX, 'adapters', 'gpt2-lora', 'adapter_config.json'), 'utf8'));
    // h.0 c_attn at rank 2 (the first two rank-1 terms), every c_proj at alpha 16 instead of 8.
    cfg.rank_pattern = { 'transformer.h.0.attn.c_attn': 2 };
    cfg.alpha_pattern = { c_proj: 16 };
    const pre = 'base_model.model.transformer.h.0.attn.c_attn.lora_';
    const A = files.get(`${pre}A.weight`)!;
    const B = files.get(`${pre}B.weight`)!;
    const cut = new Map(files);
    cut.set(`${pre}A.weight`, { dtype: 'F32', shape: [2, 64], data: (A.data as Float32Array).slice(0, 2 * 64) });
    cut.set(`${pre}B.weight`, { dtype: 'F32', shape: [192, 2], data: Float32Array.from({ length: 192 * 2 }, (_, i) => (B.data as Float32Array)[Math.floor(i / 2) * 4 + (i % 2)]) });
    const bytes = writeSafetensors(new Map([...cut].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    const out = join(tmp, 'patterns');
    await merge('gpt2-lora', 'gpt2-tiny', out, { src: adapter('gpt2-lora', cfg, bytes) });
    const merged = readSafetensorsFile(join(out, 'model.safetensors')).tensors;
    const base = readSafetensorsFile(join(FIX, 'models', 'gpt2-tiny', 'model.safetensors')).tensors;
    // Reference in float64 from the fixture's tensors: Conv1D weight [in, out] gets (s * B @ A)^T.
    const check = (module: string, r: number, alpha: number) => {
      const a = cut.get(`base_model.model.${module}.lora_A.weight`)!;
      const b = cut.get(`base_model.model.${module}.lora_B.weight`)!;
      const [, fin] = a.shape;
      const fout = b.shape[0];
      const w = base.get(`${module}.weight`)!.data as Float32Array;
      const want = new Float64Array(w.length);
      for (let i = 0; i < fin; i++) {
        for (let o = 0; o < fout; o++) {
          let d = 0;
          for (let k = 0; k < r; k++) d += (b.data as Float32Array)[o * r + k] * (a.data as Float32Array)[k * fin + i];
          want[i * fout + o] = w[i * fout + o] + (alpha / r) * d;
        }
      }
      expect(maxAbsDiff(merged.get(`${module}.weight`)!.data as Float32Array, want)).toBeLessThan(1e-6);
    };
    check('transformer.h.0.attn.c_attn', 2, 8);
    check('transformer.h.1.attn.c_attn', 4, 8);
    check('transformer.h.0.attn.c_proj', 4, 16);
    check('transformer.h.1.mlp.c_proj', 4, 16);
  });

  it.each([
    { id: 'gpt2-prompt', model: 'gpt2-tiny', what: /Prompt tuning.*virtual-token embeddings/ },
    { id: 'gpt2-ptuning-mlp', model: 'gpt2-tiny', what: /P-tuning/ },
    { id: 'gpt2-prefix', model: 'gpt2-tiny', what: /Prefix tuning.*key \/ value prefixes/ },
    { id: 'bert-seqcls-prompt', model: 'bert-tiny-seqcls', what: /Prompt tuning/ },
  ])('$id: a prompt method cannot be merged, and says why (NOT_MERGEABLE)', async ({ id, model, what }) => {
    const out = join(tmp, `no-${id}`);
    const e = await rejection(merge(id, model, out));
    expect(e.code).toBe('NOT_MERGEABLE');
    expect(e.message).toMatch(what);
    expect(e.message).toMatch(/LoRA \/ IA3/);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
  });

  it('f16 and bf16 round f32 as torch does', () => {
    // IEEE binary16 / bfloat16 encodings of well-known values.
    expect([1, -2, 65504, 65520, 1 / 3, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 0.1, Infinity].map(f32ToF16Bits))
      .toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00, 0x3555, 0x0001, 0x0000, 0x0002, 0x2e66, 0x7c00]);
    expect(f32ToF16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect([1, -2, 1 / 3, 0.1, 3.14159265, Infinity].map(f32ToBf16Bits)).toEqual([0x3f80, 0xc000, 0x3eab, 0x3dcd, 0x4049, 0x7f80]);
    expect(f32ToBf16Bits(NaN)).toBe(0x7fc0);
  });

  it.each([
    { dtype: 'F16' as const, rel: 2 ** -11 },
    { dtype: 'BF16' as const, rel: 2 ** -8 },
  ])('$dtype output: PEFT\'s merged values within $dtype rounding, and it loads back', async ({ dtype, rel }) => {
    const out = join(tmp, `llama-${dtype}`);
    await merge('llama-lora', 'llama-tiny', out, { dtype });
    const bytes = readFileSync(join(out, 'model.safetensors'));
    const header = parseHeader(new Uint8Array(bytes), 'model.safetensors', bytes.length);
    expect(new Set(Object.values(header.tensors).map((t) => t.dtype))).toEqual(new Set([dtype]));
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype).toBe(dtype === 'F16' ? 'float16' : 'bfloat16');
    const ours = readSafetensors(new Uint8Array(bytes)).tensors; // decoded back to f32
    for (const [k, t] of readSafetensorsFile(join(FIX, 'adapters', 'llama-lora', 'merged.safetensors')).tensors) {
      const o = ours.get(k)!.data as Float32Array;
      const p = t.data as Float32Array;
      let worst = 0; // how far past the rounding bound (<= 0: within it)
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(o[i] - p[i]) - (Math.abs(p[i]) * rel + 1e-7));
      expect(worst, k).toBeLessThanOrEqual(0);
    }
    const expected = fixtureTensors('adapters', 'llama-lora', 'expected.safetensors').get('logits')!;
    expect(maxAbsDiff(logitsOf(out, 'llama-tiny'), expected.data as Float32Array)).toBeLessThan(dtype === 'F16' ? 5e-3 : 5e-2);
  });

  it('shards above --max-shard-size, with an index whose weight_map names each tensor\'s shard', async () => {
    const out = join(tmp, 'sharded');
    const res = await merge('llama-lora', 'llama-tiny', out, { maxShardSize: 100_000 });
    expect(res.files.length).toBeGreaterThan(2);
    const files = readdirSync(out).filter((f) => f.endsWith('.safetensors')).sort();
    expect(files).toEqual(res.files.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(res.files.length).padStart(5, '0')}.safetensors`));
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    const peft = readSafetensorsFile(join(FIX, 'adapters', 'llama-lora', 'merged.safetensors')).tensors;
    expect(Object.keys(index.weight_map).sort()).toEqual([...peft.keys()].sort());
    let total = 0;
    for (const f of files) {
      const { tensors } = readSafetensorsFile(join(out, f));
      for (const [k, t] of tensors) {
        expect(index.weight_map[k]).toBe(f);
        expect(maxAbsDiff(t.data as Float32Array, peft.get(k)!.data as Float32Array)).toBeLessThan(1e-6);
        total += t.data.length * 4;
      }
      // A shard holds more than one tensor only while it stays under the limit.
      const size = [...tensors.values()].reduce((a, t) => a + t.data.length * 4, 0);
      if (tensors.size > 1) expect(size).toBeLessThanOrEqual(100_000);
    }
    expect(index.metadata.total_size).toBe(total);
    const expected = fixtureTensors('adapters', 'llama-lora', 'expected.safetensors').get('logits')!;
    expect(maxAbsDiff(logitsOf(out, 'llama-tiny'), expected.data as Float32Array)).toBeLessThan(1e-4);
  });

  it('shard sizes and plans follow huggingface_hub (KB = 1000, KiB = 1024; a big tensor alone)', () => {
    expect(parseShardSize('2GB')).toBe(2e9);
    expect(parseShardSize('500MB')).toBe(5e8);
    expect(parseShardSize('1GiB')).toBe(2 ** 30);
    expect(parseShardSize('12345')).toBe(12345);
    expect(() => parseShardSize('two gigs')).toThrow(/2GB/);
    const t = (name: string, n: number) => ({ name, shape: [n] });
    // 4-byte values, limit 40 bytes: [a b] [big] [c d] with c + d = 40 fitting exactly.
    const plan = planShards([t('a', 4), t('b', 4), t('big', 20), t('c', 5), t('d', 5)], 'F32', 40);
    expect(plan.map((s) => s.map((x) => x.name))).toEqual([['big'], ['a', 'b'], ['c', 'd']]);
  });

  it('CLI: merge --dtype f16 writes config, weights, copied tokenizer / generation files and a model card', async () => {
    const model = join(tmp, 'cli-model');
    cpSync(join(FIX, 'models', 'gpt2-tiny'), model, { recursive: true });
    writeFileSync(join(model, 'tokenizer_config.json'), '{"model_max_length": 128}\n');
    const out = join(tmp, 'cli-out');
    const code = await main(['merge', '--model', model, '--adapter', join(FIX, 'adapters', 'gpt2-lora'), '--out', out, '--dtype', 'f16', '--max-shard-size', '150KB', '--backend', 'cpu']);
    expect(code).toBe(0);
    const names = readdirSync(out).sort();
    expect(names).toContain('config.json');
    expect(names).toContain('model.safetensors.index.json');
    expect(names).toContain('README.md');
    expect(readFileSync(join(out, 'generation_config.json'))).toEqual(readFileSync(join(model, 'generation_config.json')));
    expect(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).toBe('{"model_max_length": 128}\n');
    const expected = fixtureTensors('adapters', 'gpt2-lora', 'expected.safetensors').get('logits')!;
    expect(maxAbsDiff(logitsOf(out, 'gpt2-tiny'), expected.data as Float32Array)).toBeLessThan(5e-3);
  });

  it('CLI: a prompt-tuning adapter is refused with the reason, and bad --dtype / --max-shard-size are usage errors', async () => {
    const args = ['merge', '--model', join(FIX, 'models', 'gpt2-tiny'), '--out', join(tmp, 'cli-bad'), '--backend', 'cpu'];
    expect(await main([...args, '--adapter', join(FIX, 'adapters', 'gpt2-prompt')])).toBe(1);
    expect(await main([...args, '--adapter', join(FIX, 'adapters', 'gpt2-lora'), '--dtype', 'int8'])).toBe(2);
    expect(await main([...args, '--adapter', join(FIX, 'adapters', 'gpt2-lora'), '--max-shard-size', 'big'])).toBe(2);
  });
});


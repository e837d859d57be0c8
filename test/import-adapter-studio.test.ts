/**
 * Importing PEFT-saved adapters into the studio: a training session started from an adapter (initialAdapter)
 * has PEFT's loss at its first step and takes AdamW's first step from PEFT's own gradient, for every method; its
 * untrained export is the imported file; the worker's ImportedAdapter gives PEFT's eval loss with the adapter and
 * the base model's without, and generates / classifies; bad files are EngineErrors that name the file and key and
 * leave nothing allocated.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors } from '../src/engine/io/safetensors';
import { uploadWeights } from '../src/engine/models';
import { parsePeftConfig } from '../src/engine/peft/config';
import { withRunSteps } from '../src/engine/peft/registry';
import { TrainingSession, type SessionInit } from '../src/engine/session';
import type { Example } from '../src/engine/train/data';
import { AdapterImport, describeAdapterConfig, ImportedAdapter, readAdapterFiles, settingsOfConfig } from '../src/worker/adapter-import';
import { BACKENDS, FIX, fixtureTensors } from './helpers';

const LR = 1e-3;

interface Case {
  id: string;
  model: string;
  task: 'CAUSAL_LM' | 'SEQ_CLS';
}

const CASES: Case[] = [
  { id: 'gpt2-lora', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-dora', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-ia3', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-adalora', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-adalora-trained', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-prompt', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-ptuning-mlp', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-prefix', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-prefix-proj', model: 'gpt2-tiny', task: 'CAUSAL_LM' },
  { id: 'llama-lora', model: 'llama-tiny', task: 'CAUSAL_LM' },
  { id: 'gpt2-seqcls-lora', model: 'gpt2-tiny-seqcls', task: 'SEQ_CLS' },
  { id: 'bert-seqcls-lora', model: 'bert-tiny-seqcls', task: 'SEQ_CLS' },
];

function files(id: string) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: new Uint8Array(readFileSync(join(dir, 'adapter_config.json'))),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
    configName: `${id}/adapter_config.json`,
    weightsName: `${id}/adapter_model.safetensors`,
  };
}

/** The fixtures' reference rows as examples: padding dropped (the session pads them again, right-aligned). */
function referenceRows(model: string, task: Case['task']): Example[] {
  const ref = fixtureTensors('models', model, 'reference.safetensors');
  const ids = ref.get('input_ids')!;
  const mask = ref.get('attention_mask')!;
  const [B, T] = ids.shape;
  const rows: Example[] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    for (let t = 0; t < T; t++) if (Number(mask.data[b * T + t]) === 1) row.push(Number(ids.data[b * T + t]));
    rows.push(task === 'SEQ_CLS' ? { inputIds: row, label: Number(ref.get('labels')!.data[b]) } : { inputIds: row });
  }
  return rows;
}

/** The model's config.json with dropout off: PEFT's reference numbers are from eval mode. */
function modelFiles(model: string) {
  const { config, tensors } = loadModelDir(join(FIX, 'models', model));
  const c: Record<string, unknown> = { ...config };
  for (const k of ['attn_pdrop', 'embd_pdrop', 'resid_pdrop', 'summary_first_dropout', 'hidden_dropout_prob', 'attention_probs_dropout_prob', 'attention_dropout']) {
    if (k in c) c[k] = 0;
  }
  return { config: c, tensors };
}

async function sessionFrom(c: Case, init: Partial<SessionInit> = {}): Promise<TrainingSession> {
  const { config, tensors } = modelFiles(c.model);
  const f = files(c.id);
  const peft = withRunSteps({ ...parsePeftConfig(f.config) }, 3);
  const rows = referenceRows(c.model, c.task);
  return TrainingSession.create({
    config, weights: tensors, task: c.task, peft, data: { train: rows, validation: rows }, initialAdapter: f,
    args: { learningRate: LR, batchSize: 2, maxSteps: 3, scheduler: 'constant', maxGradNorm: 0, weightDecay: 0, seed: 3 },
    ...init,
  });
}

describe.each(BACKENDS)('training continues from an imported PEFT adapter on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: PEFT loss at step 1, AdamW step 1 from PEFT gradient, then training goes on', async (c) => {
    const expected = fixtureTensors('adapters', c.id, 'expected.safetensors');
    const peftLoss = Number(expected.get('loss')!.data[0]);
    const f = files(c.id);
    const saved = readSafetensors(f.weights).tensors;
    const s = await sessionFrom(c);
    try {
      // Nothing trained yet: the adapter is the imported one, tensor for tensor.
      const before = readSafetensors((await s.exportAdapter())['adapter_model.safetensors']).tensors;
      expect([...before.keys()].sort()).toEqual([...saved.keys()].sort());
      for (const [k, t] of saved) expect(Array.from(before.get(k)!.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
      // Evaluation of the validation rows (the same two) is PEFT's loss.
      expect((await s.evaluate()).evalLoss).toBeCloseTo(peftLoss, 4);

      const m1 = await s.step();
      expect(Math.abs(m1.loss - peftLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(peftLoss)));

      // AdamW's first step moves each weight by lr * g / (|g| + eps), with g PEFT's gradient of that loss.
      const after = readSafetensors((await s.exportAdapter())['adapter_model.safetensors']).tensors;
      let checked = 0;
      for (const [k, t] of saved) {
        const g = expected.get(k);
        if (!g) continue; // P-tuning / projected prefix store the encoder's gradients under other names
        const w0 = t.data as Float32Array;
        const w1 = after.get(k)!.data as Float32Array;
        const gd = g.data as Float32Array;
        // AdaLoRA's E are masked by the rank allocator after the step, so only A and B follow AdamW alone.
        if (c.id.includes('adalora') && k.endsWith('lora_E')) continue;
        for (let i = 0; i < w0.length; i++) {
          if (Math.abs(gd[i]) < 1e-5) continue; // sign of a vanishing gradient is rounding noise
          const want = w0[i] - (LR * gd[i]) / (Math.abs(gd[i]) + 1e-8);
          expect(Math.abs(w1[i] - want)).toBeLessThan(LR * 2e-2);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
      const m2 = await s.step();
      const m3 = await s.step();
      expect(Number.isFinite(m2.loss) && Number.isFinite(m3.loss)).toBe(true);
      expect(m3.loss).toBeLessThan(m1.loss);
    } finally {
      s.dispose();
    }
  });
});

describe('imports that do not fit are clear errors and leak nothing', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  const gpt2 = CASES[0];

  async function failure(init: Partial<SessionInit>, c: Case = gpt2): Promise<EngineError> {
    const n = tf.memory().numTensors;
    const err = await sessionFrom(c, init).then(
      (s) => {
        s.dispose();
        throw new Error('expected an error');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect(tf.memory().numTensors).toBe(n);
    return err as EngineError;
  }

  it('another method, another rank, a corrupt or non-finite file, a missing head', async () => {
    const f = files('gpt2-lora');
    const lora = parsePeftConfig(f.config);
    const ia3 = parsePeftConfig(files('gpt2-ia3').config);
    expect((await failure({ peft: ia3 })).message).toMatch(/adapter is LORA but the run is set up for IA3/);
    const r8 = await failure({ peft: { ...lora, r: 8 } as typeof lora });
    expect(r8.code).toBe('ADAPTER_MISMATCH');
    expect(r8.message).toMatch(/gpt2-lora\/adapter_model\.safetensors: base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight has shape \[4,64\] but this model expects \[8,64\]/);
    const cut = await failure({ initialAdapter: { ...f, weights: f.weights.slice(0, 200) } });
    expect(cut.message).toMatch(/gpt2-lora\/adapter_model\.safetensors/);
    // A NaN in the file: named with its tensor.
    const nan = f.weights.slice();
    const h = Number(new DataView(nan.buffer).getBigUint64(0, true));
    new DataView(nan.buffer).setFloat32(8 + h, Number.NaN, true);
    expect((await failure({ initialAdapter: { ...f, weights: nan } })).message).toMatch(/non-finite weights/);
    expect((await failure({ initialAdapter: { ...f, config: new TextEncoder().encode('{"peft_type": ') } })).message).toMatch(/adapter_config\.json is not valid JSON/);
    // PEFT 0.15.2's SEQ_CLS prompt adapters hold no head, which a studio run trains: it would not start from the file.
    const bert: Case = { id: 'bert-seqcls-prompt', model: 'bert-tiny-seqcls', task: 'SEQ_CLS' };
    const head = await failure({}, bert);
    expect(head.message).toMatch(/holds no values for 2 of the run's trainable tensors \(base_model\.classifier\.weight, base_model\.classifier\.bias\)/);
  });
});

describe('the studio worker imports picked files', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });

  const picked = (id: string, extra: File[] = []) => {
    const f = files(id);
    return [new File([f.config], 'adapter_config.json'), new File([f.weights], 'adapter_model.safetensors'), ...extra];
  };

  function context(model: string, labels: string[] = []) {
    const { config, tensors } = loadModelDir(join(FIX, 'models', model));
    return { config, weights: uploadWeights(tensors), tokenizer: null, task: 'CAUSAL_LM' as const, labels };
  }

  it('finds the two files, describes the adapter, evaluates it against the base model as PEFT does', async () => {
    const ctx = context('gpt2-tiny');
    const imp = new AdapterImport();
    const info = await imp.load(ctx, picked('gpt2-lora', [new File(['# card'], 'README.md')]), 'gpt2-lora');
    expect(info).toMatchObject({ name: 'gpt2-lora', peftType: 'LORA', summary: 'LoRA r=4, alpha 8 on c_attn, c_proj', task: 'CAUSAL_LM', tensors: 12, params: 5632 });
    expect(info.settings).toEqual({
      values: expect.objectContaining({ r: 4, loraAlpha: 8, loraDropout: 0, useDora: false }),
      targets: { targetModules: ['c_attn', 'c_proj'], excludeModules: null, layersToTransform: null, layersPattern: null },
    });
    const rows = referenceRows('gpt2-tiny', 'CAUSAL_LM');
    const r = await imp.require().evaluate(rows, { batchSize: 2, maxLength: 128 });
    const peftLoss = Number(fixtureTensors('adapters', 'gpt2-lora', 'expected.safetensors').get('loss')!.data[0]);
    const baseLoss = Number(fixtureTensors('models', 'gpt2-tiny', 'reference.safetensors').get('loss')!.data[0]);
    expect(r.rows).toBe(2);
    expect(r.withAdapter.evalLoss).toBeCloseTo(peftLoss, 4);
    expect(r.withoutAdapter.evalLoss).toBeCloseTo(baseLoss, 4);

    // A bad import leaves the good one in place; closing frees it.
    const n = tf.memory().numTensors;
    const bad = await imp.load(ctx, picked('llama-lora'), 'llama-lora').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(EngineError);
    expect((bad as Error).message).toMatch(/^adapter_config\.json: Target modules .* not found in the base model\. .*The adapter was made for models\/llama-tiny: load that model first\./);
    expect(tf.memory().numTensors).toBe(n);
    expect(imp.current?.info.name).toBe('gpt2-lora');
    imp.close();
    expect(imp.current).toBeNull();
    ctx.weights.forEach((t) => t.dispose());
  });

  it('missing files, PyTorch pickles and SEQ_CLS heads', async () => {
    const only = files('gpt2-lora');
    await expect(readAdapterFiles([new File([only.config], 'adapter_config.json')], 'x')).rejects.toThrow(/adapter_model\.safetensors is missing among the files picked \(adapter_config\.json\)/);
    await expect(readAdapterFiles([new File([only.config], 'adapter_config.json'), new File(['x'], 'adapter_model.bin')], 'x')).rejects.toThrow(/adapter_model\.bin is a PyTorch pickle/);
    await expect(readAdapterFiles([], 'x')).rejects.toThrow(/adapter_config\.json is missing \(nothing was picked\)/);

    // A SEQ_CLS adapter on a causal LM checkpoint: the head comes from the adapter (its size too).
    const ctx = context('gpt2-tiny-seqcls', ['ham', 'spam']);
    const a = ImportedAdapter.create(ctx, { name: 'cls', ...files('gpt2-seqcls-lora') });
    try {
      expect(a.info.task).toBe('SEQ_CLS');
      expect(a.info.summary).toMatch(/^LoRA r=\d+, alpha \d+ on .*, training (classifier, score|score)/);
      const r = await a.evaluate(referenceRows('gpt2-tiny-seqcls', 'SEQ_CLS'), { batchSize: 2, maxLength: 64 });
      const peftLoss = Number(fixtureTensors('adapters', 'gpt2-seqcls-lora', 'expected.safetensors').get('loss')!.data[0]);
      expect(r.withAdapter.evalLoss).toBeCloseTo(peftLoss, 4);
      expect(r.withAdapter.f1).toBeDefined();
    } finally {
      a.dispose();
      ctx.weights.forEach((t) => t.dispose());
    }
  });

  it('describes every method', () => {
    for (const id of ['gpt2-ia3', 'gpt2-adalora', 'gpt2-prompt', 'gpt2-ptuning-lstm', 'gpt2-prefix', 'gpt2-dora']) {
      const cfg = parsePeftConfig(files(id).config);
      expect(describeAdapterConfig(cfg)).toMatch(/^(IA3 on |AdaLoRA r=\d+→\d+ on |Prompt tuning, 4 virtual|P-tuning, \d+ virtual|Prefix tuning, \d+ virtual|DoRA r=)/i);
      expect(settingsOfConfig(cfg).values).toBeTypeOf('object');
    }
  });
});

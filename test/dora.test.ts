/**
 * DoRA (LoraConfig use_dora=True) against peft 0.15.2 fixtures, on Linear (LLaMA) and GPT-2 Conv1D targets: imported
 * adapters give PEFT's logits, loss and gradients (which only agree with the weight norm detached) on both backends;
 * a fresh adapter has PEFT's exact files, starts as the base model and re-imports; merging folds the magnitude in as
 * PEFT's merge does; the KV-cache decoding and gradient checkpointing see the same layer; training lowers the loss
 * with a flat tensor count. Also LoRA's rank_pattern / alpha_pattern: per-module shapes, counts and config.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors } from '../src/engine/io/safetensors';
import type { ModuleInfo } from '../src/engine/models/types';
import { createPeftModel, LoraModel } from '../src/engine/peft';
import { formatAdapterConfigJson, parsePeftConfig, peftConfigToJson } from '../src/engine/peft/config';
import { lora } from '../src/engine/peft/lora';
import { loraConfig, type LoraConfig } from '../src/engine/peft/lora/config';
import type { PeftModel } from '../src/engine/peft/model';
import { formatTrainableLine } from '../src/engine/peft/params';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

const CASES = [
  { id: 'gpt2-dora', model: 'gpt2-tiny', keys: 6, trainable: 2432, all: 172288 + 2432 },
  { id: 'llama-dora', model: 'llama-tiny', keys: 12, trainable: 1984, all: 202048 + 1984 },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  };
}

function disposeBatch(b: Batch): void {
  for (const t of Object.values(b)) if (t instanceof tf.Tensor) t.dispose();
}

const logitsOf = (p: PeftModel, b: Batch) => tf.tidy(() => p.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }).dataSync());
const baseLogits = (p: PeftModel, b: Batch) => tf.tidy(() => p.base.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }).dataSync());

describe.each(BACKENDS)('DoRA adapters on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: imported adapter reproduces PEFT logits, loss and gradients', async ({ id, model, keys, trainable }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id));
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      expect((peft.config as LoraConfig).useDora).toBe(true);
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      const refLogits = expected.get('logits')!;
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }));
      expect(logits.shape).toEqual(refLogits.shape);
      expect(maxAbsDiff(logits.dataSync(), refLogits.data)).toBeLessThan(1e-4);
      logits.dispose();

      // The gradients of A and B only match PEFT's with no gradient through the weight norm.
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      const byVar = new Map([...state].map(([k, v]) => [v, k]));
      expect(grads.size).toBe(keys);
      for (const [v, g] of grads) {
        const key = byVar.get(v as tf.Variable)!;
        const ref = expected.get(key);
        expect(ref, `gradient for ${key}`).toBeDefined();
        expect(g.shape).toEqual(ref!.shape);
        expect(relErr(g.dataSync(), ref!.data), key).toBeLessThan(1e-3);
        g.dispose();
      }
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: a fresh adapter starts as the base model, exports exactly PEFT\'s files, and re-imports', async ({ id, model }) => {
    const files = adapterFiles(id);
    const base = fixtureModel(model);
    const peft = createPeftModel(base, parsePeftConfig(files.config), 7) as LoraModel;
    const batch = referenceBatch(model);
    try {
      // m = ||W|| per output row with B = 0: the DoRA layer is the identity at init.
      for (const [name, l] of peft.layers) {
        const w = base.params.get(`${name}.weight`)!;
        const norm = tf.tidy(() => tf.sqrt(tf.sum(tf.square(w), l.spec.fanInFanOut ? 0 : 1)));
        expect(l.magnitude!.shape).toEqual([l.spec.outFeatures]);
        expect(relErr(l.magnitude!.dataSync(), norm.dataSync())).toBeLessThan(1e-6);
        norm.dispose();
      }
      expect(maxAbsDiff(logitsOf(peft, batch), baseLogits(peft, batch))).toBeLessThan(1e-4);

      // Move B and m away from their init so the re-import check is not trivially satisfied.
      for (const l of peft.layers.values()) {
        l.B.assign(tf.randomNormal(l.B.shape, 0, 0.1, 'float32', 3));
        l.magnitude!.assign(tf.tidy(() => tf.mul(l.magnitude!, tf.randomUniform(l.magnitude!.shape, 0.8, 1.2, 'float32', 4))));
      }
      const out = await exportAdapter(peft, { baseModelNameOrPath: `models/${model}` });
      expect(out['adapter_config.json']).toBe(files.config);
      const ours = readSafetensors(out['adapter_model.safetensors']);
      const theirs = readSafetensors(files.weights);
      expect([...ours.tensors.keys()].sort()).toEqual([...theirs.tensors.keys()].sort());
      for (const [k, t] of theirs.tensors) {
        expect(ours.tensors.get(k)!.shape, k).toEqual(t.shape);
        expect(ours.tensors.get(k)!.dtype, k).toBe(t.dtype);
      }
      expect(ours.metadata).toEqual(theirs.metadata);

      const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] });
      const a = logitsOf(peft, batch);
      expect(maxAbsDiff(a, logitsOf(again, batch))).toBe(0);
      expect(maxAbsDiff(a, baseLogits(peft, batch))).toBeGreaterThan(1e-3);
      again.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: merged weights (PEFT\'s DoRA merge) equal the unmerged forward', ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id)) as LoraModel;
    const batch = referenceBatch(model);
    try {
      const merged = peft.mergedParams();
      const a = logitsOf(peft, batch);
      const b = tf.tidy(() => base.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, { overrides: merged }).dataSync());
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
      expect(maxAbsDiff(a, baseLogits(peft, batch))).toBeGreaterThan(1e-3);
      merged.forEach((t) => t.dispose());
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: KV-cache decoding gives the forward\'s logits', async ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id));
    const prompt = [5, 17, 300, 42, 9];
    try {
      const dec = base.startDecoding!(prompt, peft.hooks(false));
      let cached: Float32Array;
      try {
        dec.next(77);
        cached = Float32Array.from((await dec.logits.data()) as Float32Array);
      } finally {
        dec.dispose();
      }
      const full = tf.tidy(() => peft.forward({ inputIds: tf.tensor2d([[...prompt, 77]], [1, 6], 'int32') }));
      const rows = (await full.data()) as Float32Array;
      const V = full.shape[2]!;
      full.dispose();
      expect(maxAbsDiff(cached, rows.subarray(5 * V, 6 * V))).toBeLessThan(1e-4);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });
});

describe('DoRA with dropout and gradient checkpointing', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('training with lora_dropout gives the same loss and gradients checkpointed or not (magnitude included)', async () => {
    const base = fixtureModel('gpt2-tiny');
    const cfg = loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, loraDropout: 0.3, useDora: true, targetModules: ['c_attn', 'c_fc'] });
    const peft = createPeftModel(base, cfg, 3) as LoraModel;
    const batch = referenceBatch('gpt2-tiny');
    try {
      for (const l of peft.layers.values()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.1, 'float32', 5));
      const run = (checkpoint: boolean) => lossAndGrads(peftTrainable(peft, { checkpoint, seed: () => 11 }), batch, true);
      const plain = await run(false);
      const ck = await run(true);
      expect(Math.abs(plain.loss - ck.loss)).toBeLessThan(1e-5);
      expect(ck.grads.size).toBe(peft.trainableVariables().length);
      for (const [v, g] of plain.grads) {
        expect(relErr(ck.grads.get(v)!.dataSync(), g.dataSync()), v.name).toBeLessThan(1e-4);
      }
      // Dropout is on: the loss differs from the eval-mode one.
      const evalLoss = (await lossAndGrads(peftTrainable(peft), batch, false)).loss;
      expect(Math.abs(evalLoss - plain.loss)).toBeGreaterThan(1e-4);
      for (const r of [plain, ck]) r.grads.forEach((g) => g.dispose());
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });
});

describe('DoRA counts and config', () => {
  const modules = (name: string): ModuleInfo[] => readJson(`models/${name}/named_modules.json`);
  const raw = (name: string) => loadModelDir(join(FIX, 'models', name)).config;

  it.each(CASES)('$id: PEFT\'s trainable line (A, B and the magnitude) and an exact config round trip', ({ id, model, trainable, all }) => {
    const text = readFileSync(join(FIX, 'adapters', id, 'adapter_config.json'), 'utf8');
    const cfg = parsePeftConfig(text) as LoraConfig;
    expect(cfg.useDora).toBe(true);
    const rep = lora.resolve({ modules: modules(model), rawConfig: raw(model), task: 'CAUSAL_LM' }, cfg);
    expect(rep.count).toEqual({ trainable, all });
    expect(formatTrainableLine(rep.count)).toMatch(new RegExp(`^trainable params: ${trainable.toLocaleString('en-US')} \\|\\| all params: ${all.toLocaleString('en-US')} \\|\\|`));
    expect(formatAdapterConfigJson(peftConfigToJson(cfg, { baseModelNameOrPath: cfg.baseModelNameOrPath ?? null }))).toBe(text);
  });
});

describe.each(BACKENDS)('DoRA training on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('a short TrainingSession lowers the loss, with tf.memory().numTensors flat across steps', async () => {
    const data: Example[] = Array.from({ length: 32 }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'llama-tiny'));
    const steps = backend === 'wasm' ? 20 : 8;
    const s = await TrainingSession.create({
      config, weights: tensors,
      peft: loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, useDora: true, targetModules: ['q_proj', 'v_proj', 'down_proj'] }),
      data: { train: data, validation: data.slice(0, 8) },
      args: { learningRate: 1e-2, batchSize: 8, maxSteps: steps, scheduler: 'constant', seed: 1 },
    });
    try {
      const before = await s.evaluate();
      const l: number[] = [];
      let n = 0;
      for (let i = 0; i < steps; i++) {
        l.push((await s.step()).loss);
        if (i === 1) n = tf.memory().numTensors;
        if (i > 1) expect(tf.memory().numTensors, `tensors after step ${i + 1}`).toBe(n);
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(l.slice(-3))).toBeLessThan(mean(l.slice(0, 3)));
      const after = await s.evaluate();
      expect(after.evalLoss).toBeLessThan(before.evalLoss);
      // The magnitudes trained too.
      const m = [...(s.peft as LoraModel).layers.values()][0].magnitude!;
      expect(m.dataSync().length).toBeGreaterThan(0);
    } finally {
      s.dispose();
    }
  });
});

describe.each(BACKENDS)('LoRA rank_pattern / alpha_pattern on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('exports PEFT-shaped per-module A / B, counts per-module r, and writes both patterns to adapter_config.json', async () => {
    const base = fixtureModel('gpt2-tiny');
    // c_attn everywhere r=2; layer 1's c_proj r=6 (PEFT's keys: regexes matched at the end of the name, first wins).
    const cfg = loraConfig({
      taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_proj'],
      rankPattern: { c_attn: 2, 'h\\.1\\.attn\\.c_proj': 6 }, alphaPattern: { c_attn: 16 },
    });
    const peft = createPeftModel(base, cfg, 1) as LoraModel;
    try {
      const rank = (m: string) => peft.layers.get(m)!.spec.r;
      expect(rank('transformer.h.0.attn.c_attn')).toBe(2);
      expect(rank('transformer.h.1.attn.c_attn')).toBe(2);
      expect(rank('transformer.h.0.attn.c_proj')).toBe(4);
      expect(rank('transformer.h.1.attn.c_proj')).toBe(6);
      expect(rank('transformer.h.0.mlp.c_proj')).toBe(4);
      expect(peft.layers.get('transformer.h.0.attn.c_attn')!.scaling).toBe(16 / 2);
      expect(peft.layers.get('transformer.h.1.attn.c_proj')!.scaling).toBe(8 / 6);

      const out = await exportAdapter(peft, { baseModelNameOrPath: 'models/gpt2-tiny' });
      const shapes = Object.fromEntries([...readSafetensors(out['adapter_model.safetensors']).tensors].map(([k, t]) => [k.replace('base_model.model.transformer.', ''), t.shape]));
      expect(shapes['h.0.attn.c_attn.lora_A.weight']).toEqual([2, 64]);
      expect(shapes['h.0.attn.c_attn.lora_B.weight']).toEqual([192, 2]);
      expect(shapes['h.1.attn.c_proj.lora_A.weight']).toEqual([6, 64]);
      expect(shapes['h.1.attn.c_proj.lora_B.weight']).toEqual([64, 6]);
      expect(shapes['h.0.mlp.c_proj.lora_A.weight']).toEqual([4, 256]);
      expect(shapes['h.0.mlp.c_proj.lora_B.weight']).toEqual([64, 4]);
      const json = JSON.parse(out['adapter_config.json']);
      expect(json.rank_pattern).toEqual({ c_attn: 2, 'h\\.1\\.attn\\.c_proj': 6 });
      expect(json.alpha_pattern).toEqual({ c_attn: 16 });
      expect(json.r).toBe(4);
      expect(out['adapter_config.json']).toContain('"rank_pattern": {\n    "c_attn": 2,\n    "h\\\\.1\\\\.attn\\\\.c_proj": 6\n  }');

      // The trainable line uses each module's own r: c_attn 2 * (64 + 192) x 2, c_proj (attn 64->64, mlp 256->64).
      const rep = lora.resolve({ modules: base.modules, rawConfig: base.rawConfig, task: 'CAUSAL_LM' }, cfg);
      const expected = 2 * 2 * 256 + 4 * 128 + 6 * 128 + 2 * 4 * 320;
      expect(rep.count.trainable).toBe(expected);
      expect(rep.count.trainable).toBe([...peft.stateDict().values()].reduce((n, t) => n + t.size, 0));

      // Re-import: the patterns give the saved shapes back and the same logits.
      const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] });
      const batch = referenceBatch('gpt2-tiny');
      for (const l of peft.layers.values()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.1, 'float32', 2));
      const out2 = await exportAdapter(peft, { baseModelNameOrPath: 'models/gpt2-tiny' });
      const again2 = loadAdapter(base, { config: out2['adapter_config.json'], weights: out2['adapter_model.safetensors'] });
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(again2, batch))).toBe(0);
      [again, again2].forEach((p) => p.dispose());
      disposeBatch(batch);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });
});

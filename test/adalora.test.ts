/**
 * AdaLoRA against peft 0.15.2 fixtures: imported adapters (fresh and rank-pruned, rank 0 included) give PEFT's
 * logits, loss (cross-entropy + orthogonal regulariser) and gradients on both backends; the 10-step trajectory
 * (AdamW, importance scores, budget schedule, masking, final rank_pattern, resized tensors) is reproduced; a
 * fresh adapter has PEFT's exact files; targets and config errors read like PEFT's; a training run lowers the
 * loss without leaking tensors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors } from '../src/engine/io/safetensors';
import type { ModuleInfo } from '../src/engine/models/types';
import { createPeftModel } from '../src/engine/peft';
import { adalora } from '../src/engine/peft/adalora';
import { adaLoraConfig, type AdaLoraConfig } from '../src/engine/peft/adalora/config';
import { AdaLoraModel } from '../src/engine/peft/adalora/model';
import { parsePeftConfig } from '../src/engine/peft/config';
import { peftEvaluate, type PeftModel } from '../src/engine/peft/model';
import { formatTrainableLine } from '../src/engine/peft/params';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { AdamW } from '../src/engine/train/optimizer';
import { lossAndGrads, optimizerStep, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

const CASES = [
  { id: 'gpt2-adalora', model: 'gpt2-tiny', keys: 6, trainable: 3084 },
  { id: 'llama-adalora', model: 'llama-tiny', keys: 12, trainable: 2712 },
  { id: 'gpt2-adalora-trained', model: 'gpt2-tiny', keys: 6, trainable: 1028 },
  { id: 'llama-adalora-trained', model: 'llama-tiny', keys: 12, trainable: 776 },
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
const scalar = async (t: tf.Tensor) => {
  const v = (await t.data())[0];
  t.dispose();
  return v;
};

function thrown(f: () => unknown): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('expected an EngineError');
}

/** The fixtures' AdaLoRA settings (README "AdaLoRA"). */
const FIXTURE_CFG: Partial<AdaLoraConfig> = {
  taskType: 'CAUSAL_LM', initR: 6, targetR: 2, tinit: 2, tfinal: 2, deltaT: 2, totalStep: 10, beta1: 0.85, beta2: 0.85,
  orthRegWeight: 0.5, loraAlpha: 8, loraDropout: 0,
};

describe.each(BACKENDS)('AdaLoRA adapters on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: imported adapter reproduces PEFT logits, loss (ce + orth_reg) and gradients', async ({ id, model, keys, trainable }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id)) as AdaLoraModel;
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      expect(peft).toBeInstanceOf(AdaLoraModel);
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      for (const [k, t] of state) expect(t.shape, k).toEqual(expected.get(k)!.shape);

      const logits = logitsOf(peft, batch);
      expect(maxAbsDiff(logits, expected.get('logits')!.data)).toBeLessThan(1e-4);
      expect(Math.abs((await scalar(peft.regularizer())) - 0.5 * expected.get('orth_reg_loss')!.data[0])).toBeLessThan(1e-5);

      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      const byVar = new Map([...state].map(([k, v]) => [v, k]));
      for (const [k, t] of state) {
        const ref = expected.get(k)!;
        const g = grads.get(t as tf.Variable);
        // A rank-0 module takes no part in the forward pass: its (empty) gradient is absent here.
        if (ref.data.length === 0) {
          expect(g === undefined || g.size === 0, k).toBe(true);
          continue;
        }
        expect(g, `gradient for ${k}`).toBeDefined();
        expect(g!.shape).toEqual(ref.shape);
        expect(relErr(g!.dataSync(), ref.data), k).toBeLessThan(1e-3);
      }
      expect([...grads.keys()].every((v) => byVar.has(v))).toBe(true);
      tf.dispose([...grads.values()]);

      // Evaluation adds the regulariser too (AdaLoraModel.forward adds it to any loss).
      const ev = peftEvaluate(peft, { inputIds: batch.inputIds, attentionMask: batch.attentionMask }, batch.labels);
      expect(Math.abs((await scalar(ev.loss)) - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      tf.dispose([ev.preds, ev.labels]);
      // Switched off, the base model runs bare: its own loss, no regulariser.
      peft.enabled = false;
      const off = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(off.loss - fixtureTensors('models', model, 'reference.safetensors').get('loss')!.data[0])).toBeLessThan(1e-4);
      tf.dispose([...off.grads.values()]);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES.slice(0, 2))('$id: a fresh adapter exports exactly PEFT\'s keys, shapes and adapter_config.json, and re-imports', async ({ id, model, trainable }) => {
    const files = adapterFiles(id);
    const base = fixtureModel(model);
    const cfg = parsePeftConfig(files.config);
    const peft = createPeftModel(base, cfg, 7) as AdaLoraModel;
    const batch = referenceBatch(model);
    try {
      // Move E away from zero so the re-import check is not trivially satisfied.
      for (const l of peft.layers.values()) l.E.assign(tf.randomNormal(l.E.shape, 0, 0.1, 'float32', 3));
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
      expect([...ours.tensors.values()].reduce((n, t) => n + t.data.length, 0)).toBe(trainable);

      const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] });
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(again, batch))).toBe(0);
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(base as unknown as PeftModel, batch))).toBeGreaterThan(1e-4);
      again.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });
});

/** Runs the fixture's 10 steps (README "AdaLoRA": AdamW lr 1e-2, no clipping, update_and_allocate(t)). */
async function trajectory(id: string, model: string) {
  const traj = fixtureTensors('adapters', `${id}-trained`, 'trajectory.safetensors');
  const info = readJson(`adapters/${id}-trained/trajectory.json`);
  const modules: string[] = info.modules;
  const base = fixtureModel(model);
  const peft = loadAdapter(base, adapterFiles(id)) as AdaLoraModel;
  const opt = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const L = 2 * 7;
  const slice = (k: string, t: number) => {
    const d = traj.get(k)!.data as Int32Array;
    return tf.tensor2d(d.slice(t * L, (t + 1) * L), [2, 7], 'int32');
  };
  const counts: number[] = [];
  // PEFT ran the trajectory in eval mode: no dropout (GPT-2's config has 0.1), the regulariser still added.
  const trainable = peftTrainable(peft);
  const evalMode = { ...trainable, loss: (b: Batch) => trainable.loss(b, false) };
  try {
    expect([...peft.layers.keys()].sort()).toEqual(modules);
    for (let t = 0; t < 10; t++) {
      const batch: Batch = { inputIds: slice('traj_input_ids', t), attentionMask: slice('traj_attention_mask', t), labels: slice('traj_labels', t), tokens: 0 };
      try {
        const reg = (await scalar(peft.regularizer())) / 0.5;
        expect(Math.abs(reg - traj.get('traj_orth_reg_loss')!.data[t]), `orth_reg at step ${t}`).toBeLessThan(1e-4 * Math.abs(traj.get('traj_orth_reg_loss')!.data[t]));
        const r = await optimizerStep(evalMode, opt, [batch], 1e-2, 0, { step: t });
        const refLoss = traj.get('traj_loss')!.data[t];
        expect(Math.abs(r.loss - refLoss) / Math.abs(refLoss), `loss at step ${t}`).toBeLessThan(1e-4);
      } finally {
        disposeBatch(batch);
      }
      const step = info.steps[t];
      expect(peft.lastAllocation).toEqual({ globalStep: t, phase: step.phase, budget: step.budget, masked: step.masked });
      expect(peft.lastAllocation!.budget).toBe(traj.get('traj_budget')!.data[t]);
      const n = modules.length;
      const refE = traj.get('traj_lora_E')!.data.subarray(t * n * 6, (t + 1) * n * 6);
      const refMask = traj.get('traj_mask')!.data.subarray(t * n * 6, (t + 1) * n * 6);
      const e = modules.flatMap((m) => Array.from(peft.layers.get(m)!.E.dataSync()));
      expect(e.map((x) => (x !== 0 ? 1 : 0)), `mask at step ${t}`).toEqual(Array.from(refMask));
      expect(maxAbsDiff(e, refE), `E at step ${t}`).toBeLessThan(1e-4);
      const kept = Object.fromEntries(modules.map((m, i) => [m, e.slice(i * 6, (i + 1) * 6).filter((x) => x !== 0).length]));
      expect(kept, `kept ranks at step ${t}`).toEqual(step.kept_ranks);
      counts.push(tf.memory().numTensors);
    }
    // No tensor is left behind by a step; the score EMAs are created at step 0 and released at the final allocation.
    expect(new Set(counts.slice(1, 8)).size).toBe(1);
    expect(counts[9]).toBe(counts[8]);
    expect(peft.rankPattern).toEqual(info.final_rank_pattern);

    // The saved adapter: rank_pattern in adapter_config.json and the tensors resized by it.
    const trained = adapterFiles(`${id}-trained`);
    const out = await exportAdapter(peft, { baseModelNameOrPath: `models/${model}` });
    expect(out['adapter_config.json']).toBe(trained.config);
    const ours = readSafetensors(out['adapter_model.safetensors']).tensors;
    const theirs = readSafetensors(trained.weights).tensors;
    expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [k, ref] of theirs) {
      expect(ours.get(k)!.shape, k).toEqual(ref.shape);
      expect(maxAbsDiff(ours.get(k)!.data as Float32Array, ref.data as Float32Array), k).toBeLessThan(1e-4);
    }
    // And it loads back at the pruned ranks with the same logits.
    const batch = referenceBatch(model);
    const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] });
    expect(maxAbsDiff(logitsOf(again, batch), fixtureTensors('adapters', `${id}-trained`, 'expected.safetensors').get('logits')!.data)).toBeLessThan(1e-4);
    again.dispose();
    disposeBatch(batch);
  } finally {
    opt.dispose();
    peft.dispose();
    base.dispose();
  }
}

describe('AdaLoRA with gradient checkpointing and heads', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });

  it('checkpointed blocks give the same loss and gradients (A, E, B are the blocks\' variables)', async () => {
    const base = fixtureModel('llama-tiny');
    const peft = loadAdapter(base, adapterFiles('llama-adalora'));
    const batch = referenceBatch('llama-tiny');
    try {
      const plain = await lossAndGrads(peftTrainable(peft), batch, false);
      const ck = await lossAndGrads(peftTrainable(peft, { checkpoint: true }), batch, false);
      expect(Math.abs(plain.loss - ck.loss)).toBeLessThan(1e-6);
      expect(ck.grads.size).toBe(plain.grads.size);
      for (const [v, g] of plain.grads) expect(relErr(ck.grads.get(v)!.dataSync(), g.dataSync())).toBeLessThan(1e-5);
      tf.dispose([...plain.grads.values(), ...ck.grads.values()]);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('merged weights equal the unmerged forward (get_delta_weight, Conv1D transposed)', () => {
    for (const [id, model] of [['gpt2-adalora', 'gpt2-tiny'], ['llama-adalora-trained', 'llama-tiny']] as const) {
      const base = fixtureModel(model);
      const peft = loadAdapter(base, adapterFiles(id)) as AdaLoraModel;
      const batch = referenceBatch(model);
      try {
        const merged = peft.mergedParams();
        const b = tf.tidy(() => base.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, { overrides: merged }).dataSync());
        expect(maxAbsDiff(logitsOf(peft, batch), b), id).toBeLessThan(1e-4);
        tf.dispose([...merged.values()]);
      } finally {
        disposeBatch(batch);
        peft.dispose();
        base.dispose();
      }
    }
  });

  it('SEQ_CLS: the head is a trainable modules_to_save copy saved with the adapter; bias="all" trains biases', () => {
    const base = fixtureModel('gpt2-tiny-seqcls', 'SEQ_CLS');
    const peft = createPeftModel(base, adaLoraConfig({ ...FIXTURE_CFG, taskType: 'SEQ_CLS', targetModules: ['c_attn'], bias: 'all' }), 1);
    try {
      const keys = [...peft.stateDict().keys()];
      expect(keys).toContain('base_model.model.score.weight');
      expect(keys).toContain('base_model.model.transformer.h.0.attn.c_attn.base_layer.bias');
      expect(keys).toContain('base_model.model.transformer.h.0.mlp.c_fc.bias');
      expect(keys).toContain('base_model.model.transformer.h.1.attn.c_attn.lora_E');
      expect(peft.trainableVariables().length).toBe(keys.length);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });
});

describe.each(BACKENDS)('AdaLoRA training trajectory on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('gpt2-adalora: 10 steps reproduce PEFT\'s losses, budgets, masks, rank_pattern and trained adapter', async () => {
    await trajectory('gpt2-adalora', 'gpt2-tiny');
  });

  it('llama-adalora: 10 steps reproduce PEFT\'s losses, budgets, masks, rank_pattern (rank-0 modules) and trained adapter', async () => {
    await trajectory('llama-adalora', 'llama-tiny');
  });
});

describe('AdaLoRA config and targets', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  const treeOf = (model: string) => ({
    modules: readJson(`models/${model}/named_modules.json`) as ModuleInfo[],
    rawConfig: readJson(`models/${model}/config.json`),
    task: 'CAUSAL_LM' as const,
  });

  it('target_modules_more.json AdaLoRA cases: matches, saved targets and PEFT\'s parameter counts', () => {
    const cases = readJson('target_modules_more.json').cases.filter((c: { config_class: string }) => c.config_class === 'AdaLoraConfig');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const k = c.config;
      const make = () =>
        adaLoraConfig({
          taskType: k.task_type ?? null, targetModules: k.target_modules ?? null, excludeModules: k.exclude_modules ?? null,
          layersToTransform: k.layers_to_transform ?? null, layersPattern: k.layers_pattern ?? null, modulesToSave: k.modules_to_save ?? null,
          initR: k.init_r, targetR: k.target_r, tinit: k.tinit, tfinal: k.tfinal, deltaT: k.deltaT, totalStep: k.total_step,
          beta1: k.beta1, beta2: k.beta2, orthRegWeight: k.orth_reg_weight, loraAlpha: k.lora_alpha, loraDropout: k.lora_dropout,
        });
      if (c.error) {
        expect(() => adalora.resolve(treeOf(c.model), make()), c.id).toThrow(c.error.message);
        continue;
      }
      const rep = adalora.resolve(treeOf(c.model), make());
      expect(rep.matched, c.id).toEqual(c.matched_modules);
      expect(rep.modulesToSave, c.id).toEqual(c.modules_to_save);
      expect(rep.count, c.id).toEqual({ trainable: c.trainable_params, all: c.all_params });
      expect(formatTrainableLine(rep.count)).toMatch(/^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}$/);
    }
  });

  it('a pruned adapter\'s config counts its kept ranks (trainable params of the *-trained cases)', () => {
    for (const [id, model, trainable] of [['gpt2-adalora-trained', 'gpt2-tiny', 1028], ['llama-adalora-trained', 'llama-tiny', 776]] as const) {
      const cfg = parsePeftConfig(adapterFiles(id).config) as AdaLoraConfig;
      expect(adalora.resolve(treeOf(model), cfg).count.trainable).toBe(trainable);
    }
  });

  it('refuses what PEFT refuses, with PEFT\'s messages', () => {
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, totalStep: null })).message).toBe('AdaLoRA does not work when `total_step` is None, supply a value > 0.');
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, totalStep: 0 })).message).toBe('AdaLoRA does not work when `total_step` is None, supply a value > 0.');
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, tinit: 5, tfinal: 5 })).message).toBe(
      "The supplied schedule values don't allow for a budgeting phase. Decrease `tfinal`/`tinit` or increase `total_step`.",
    );
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, useDora: true })).message).toBe('ADALORA does not support DoRA.');
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, targetModules: 'q_proj', layersToTransform: [0] })).message).toBe(
      '`layers_to_transform` cannot be used when `target_modules` is a str.',
    );
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, initR: -1 })).message).toBe('`r` should be a positive integer or 0, but the value passed is -1');
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, beta1: 1 })).code).toBe('BAD_PEFT_CONFIG');
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, orthRegWeight: 0 })).message).toMatch(/orth_reg_weight/);
    expect(thrown(() => adaLoraConfig({ ...FIXTURE_CFG, targetR: 6 })).message).toMatch(/target_r \(6\) must be smaller than init_r \(6\)/);
    // Only Linear and Conv1D become SVDLinear (AdaLoraModel._create_new_module).
    const emb = thrown(() => adalora.resolve(treeOf('llama-tiny'), adaLoraConfig({ ...FIXTURE_CFG, targetModules: ['embed_tokens'] })));
    expect(emb.message).toBe('Target module model.embed_tokens (Embedding) is not supported. Currently, only `torch.nn.Linear` and `Conv1D` are supported.');
    const none = thrown(() => adalora.resolve(treeOf('llama-tiny'), adaLoraConfig({ ...FIXTURE_CFG, targetModules: ['nope'] })));
    expect(none.code).toBe('TARGETS_NOT_FOUND');
    expect(none.message).toBe("Target modules {'nope'} not found in the base model. Please check the target modules and try again.");
  });

  it('defaults come from PEFT\'s AdaLoRA mapping and the file round-trips', () => {
    const rep = adalora.resolve(treeOf('llama-tiny'), adaLoraConfig({ ...FIXTURE_CFG, targetModules: null }));
    expect(rep.matched).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    for (const id of ['gpt2-adalora', 'gpt2-adalora-trained', 'llama-adalora-trained']) {
      const cfg = parsePeftConfig(adapterFiles(id).config) as AdaLoraConfig;
      expect(cfg.peftType).toBe('ADALORA');
      expect(cfg.initR).toBe(6);
    }
    expect((parsePeftConfig(adapterFiles('llama-adalora-trained').config) as AdaLoraConfig).rankPattern!['model.layers.0.self_attn.q_proj.lora_E']).toEqual(Array(6).fill(false));
  });
});

/** Tiny repetitive corpus the tiny models can fit within a few dozen steps (as train.test.ts). */
function clmData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('AdaLoRA in a TrainingSession', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });

  it('lowers the loss, prunes to the target budget, keeps the tensor count flat and exports the pruned adapter', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const peftCfg = adaLoraConfig({
      taskType: 'CAUSAL_LM', targetModules: ['c_attn', 'c_fc'], initR: 8, targetR: 4, tinit: 5, tfinal: 10, deltaT: 5, totalStep: 40, loraAlpha: 16,
    });
    const s = await TrainingSession.create({
      config, weights: tensors, task: 'CAUSAL_LM', peft: peftCfg, data: { train: clmData(32), validation: clmData(8) },
      args: { learningRate: 1e-2, batchSize: 8, maxSteps: 40, scheduler: 'constant', seed: 1 },
    });
    try {
      const peft = s.peft as AdaLoraModel;
      const before = await s.evaluate();
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await s.step()).loss);
      const n = tf.memory().numTensors;
      // Steps 3..29 include scheduled maskings (steps 10, 15, 20, 25) before the final allocation at step 30.
      for (let i = 3; i < 30; i++) {
        losses.push((await s.step()).loss);
        expect(tf.memory().numTensors, `tensors after step ${i}`).toBe(n);
      }
      for (let i = 30; i < 40; i++) losses.push((await s.step()).loss);
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
      expect((await s.evaluate()).evalLoss).toBeLessThan(before.evalLoss);
      const ranks = [...peft.ranks().values()];
      expect(ranks.reduce((a, b) => a + b, 0)).toBe(4 * 4);
      const files = await s.exportAdapter();
      const saved = JSON.parse(files['adapter_config.json']);
      expect(Object.keys(saved.rank_pattern).sort()).toEqual([...peft.layers.keys()].sort().map((m) => `${m}.lora_E`));
      const w = readSafetensors(files['adapter_model.safetensors']).tensors;
      for (const [m, r] of peft.ranks()) expect(w.get(`base_model.model.${m}.lora_A`)!.shape[0]).toBe(r);
    } finally {
      s.dispose();
    }
  });
});

/**
 * Gradient checkpointing end to end: with peftTrainable(peft, {checkpoint: true}) every block is recomputed in
 * the backward pass, and the loss and gradients must be those of the plain pass (and PEFT's, from the
 * fixtures), with dropout off and with dropout on at the same seed. A TrainingSession with
 * gradientCheckpointing trains step for step like one without, with a flat tensor count.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { buildModel } from '../src/engine/models';
import type { Model } from '../src/engine/models/types';
import { createPeftModel, LoraModel } from '../src/engine/peft';
import { loraConfig, type LoraConfig } from '../src/engine/peft/lora/config';
import type { PeftModel } from '../src/engine/peft/model';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, referenceBatch, relErr } from './helpers';

const CASES = [
  { id: 'gpt2-lora', model: 'gpt2-tiny' },
  { id: 'gpt2-seqcls-lora', model: 'gpt2-tiny-seqcls' },
  { id: 'llama-lora', model: 'llama-tiny' },
  { id: 'gpt2-prompt', model: 'gpt2-tiny' },
  { id: 'bert-seqcls-lora', model: 'bert-tiny-seqcls' },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  };
}

const disposeBatch = (b: Batch) => [b.inputIds, b.attentionMask, b.labels].forEach((t) => t.dispose());

interface Result {
  loss: number;
  grads: Map<tf.Variable, Float32Array>;
}

async function run(peft: PeftModel, batch: Batch, o: { checkpoint: boolean; training: boolean; seed?: number }): Promise<Result> {
  const r = await lossAndGrads(peftTrainable(peft, { checkpoint: o.checkpoint, seed: () => o.seed ?? 0 }), batch, o.training);
  const grads = new Map<tf.Variable, Float32Array>();
  for (const [v, g] of r.grads) {
    grads.set(v, Float32Array.from(g.dataSync()));
    g.dispose();
  }
  return { loss: r.loss, grads };
}

/** Same loss (1e-5) and the same gradient for every trainable variable (1e-4 relative). */
function expectSame(got: Result, want: Result, label: string, vars: tf.Variable[]): void {
  expect(Math.abs(got.loss - want.loss), `${label}: loss ${got.loss} vs ${want.loss}`).toBeLessThan(1e-5);
  expect(want.grads.size, `${label}: every trainable variable has a gradient`).toBe(vars.length);
  expect(got.grads.size, label).toBe(want.grads.size);
  for (const v of vars) {
    const g = got.grads.get(v);
    const w = want.grads.get(v)!;
    expect(g, `${label}: ${v.name} has no gradient with checkpointing`).toBeDefined();
    expect(Math.max(...w.map(Math.abs)), `${label}: ${v.name} reference gradient is zero`).toBeGreaterThan(0);
    expect(relErr(g!, w), `${label}: ${v.name}`).toBeLessThan(1e-4);
  }
}

/** Moves LoRA B away from zero so that every A has a nonzero gradient. */
function perturbB(peft: PeftModel): void {
  if (!(peft instanceof LoraModel)) return;
  let seed = 11;
  for (const l of peft.layers.values()) {
    const t = tf.randomNormal(l.B.shape, 0, 0.1, 'float32', seed++);
    l.B.assign(t);
    t.dispose();
  }
}

function modelWith(model: string, overrides: Record<string, unknown>): Model {
  const { config, tensors } = loadModelDir(join(FIX, 'models', model));
  return buildModel({ ...config, ...overrides }, tensors);
}

/** Tiny repetitive corpus (as in train.test.ts). */
function clmData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
}

describe.each(BACKENDS)('gradient checkpointing on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: the same loss and gradients as without checkpointing, and PEFT\'s (dropout off)', async ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id));
    const batch = referenceBatch(model);
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    try {
      await run(peft, batch, { checkpoint: false, training: false }); // fills the causal-mask / RoPE caches
      const start = tf.memory().numTensors;
      const plain = await run(peft, batch, { checkpoint: false, training: false });
      const ckpt = await run(peft, batch, { checkpoint: true, training: false });
      expect(tf.memory().numTensors).toBe(start);
      expectSame(ckpt, plain, id, peft.trainableVariables());
      // The independent reference: PEFT's loss and gradients (PyTorch) for the same batch.
      expect(Math.abs(ckpt.loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      const byVar = new Map([...peft.stateDict()].map(([k, v]) => [v, k]));
      for (const [v, g] of ckpt.grads) {
        const key = byVar.get(v as tf.Variable)!;
        expect(relErr(g, expected.get(key)!.data), `${key} vs PEFT`).toBeLessThan(1e-3);
      }
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES.filter((c) => c.model !== 'llama-tiny'))(
    '$id with dropout on (training, p = 0.1): checkpointed gradients equal the plain ones at the same seed',
    async ({ id, model }) => {
      const base = fixtureModel(model);
      const peft = loadAdapter(base, adapterFiles(id));
      const batch = referenceBatch(model);
      try {
        const off = await run(peft, batch, { checkpoint: false, training: false });
        const plain = await run(peft, batch, { checkpoint: false, training: true, seed: 4242 });
        const again = await run(peft, batch, { checkpoint: false, training: true, seed: 4242 });
        const other = await run(peft, batch, { checkpoint: false, training: true, seed: 4243 });
        // Dropout is really on, and reproducible from the seed.
        expect(Math.abs(plain.loss - off.loss)).toBeGreaterThan(1e-4);
        expect(Math.abs(plain.loss - other.loss)).toBeGreaterThan(1e-4);
        expect(again.loss).toBe(plain.loss);
        const ckpt = await run(peft, batch, { checkpoint: true, training: true, seed: 4242 });
        expectSame(ckpt, plain, `${id} (dropout)`, peft.trainableVariables());
      } finally {
        disposeBatch(batch);
        peft.dispose();
        base.dispose();
      }
    },
  );

  it.each<[string, string, Record<string, unknown>, Partial<LoraConfig>]>([
    ['llama-tiny, GQA attention dropout 0.1 and LoRA dropout 0.1 on q/v/gate', 'llama-tiny', { attention_dropout: 0.1 },
      { taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: ['q_proj', 'v_proj', 'gate_proj'] }],
    ['gpt2-tiny, LoRA dropout 0.1 and trainable biases (bias="all")', 'gpt2-tiny', {},
      { taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, loraDropout: 0.1, bias: 'all', targetModules: ['c_attn', 'c_fc'] }],
    ['bert-tiny-seqcls, LoRA dropout 0.1 and the classifier trained (modules_to_save)', 'bert-tiny-seqcls', {},
      { taskType: 'SEQ_CLS', r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: ['query', 'value'] }],
  ])('%s: checkpointed = plain, dropout on and off', async (_n, model, overrides, cfg) => {
    const base = modelWith(model, overrides);
    const peft = createPeftModel(base, loraConfig(cfg), 3);
    perturbB(peft);
    const batch = referenceBatch(model);
    try {
      const vars = peft.trainableVariables();
      expectSame(await run(peft, batch, { checkpoint: true, training: false }), await run(peft, batch, { checkpoint: false, training: false }), 'dropout off', vars);
      const plain = await run(peft, batch, { checkpoint: false, training: true, seed: 99 });
      const off = await run(peft, batch, { checkpoint: false, training: false });
      expect(Math.abs(plain.loss - off.loss)).toBeGreaterThan(1e-4);
      expectSame(await run(peft, batch, { checkpoint: true, training: true, seed: 99 }), plain, 'dropout on', vars);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('a TrainingSession with gradientCheckpointing trains step for step like one without, with a flat tensor count', async () => {
    // Dropout is on (gpt2-tiny has p = 0.1 everywhere); both sessions draw the same seeds.
    // The cpu backend is about 15x slower: a short run there, the long one on wasm.
    const steps = backend === 'wasm' ? 20 : 6;
    const batchSize = backend === 'wasm' ? 8 : 4;
    const make = (gradientCheckpointing: boolean) => {
      const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
      return TrainingSession.create({
        config, weights: tensors,
        peft: loraConfig({ taskType: 'CAUSAL_LM', r: 8, loraAlpha: 16, targetModules: ['c_attn', 'c_proj', 'c_fc'] }),
        data: { train: clmData(32), validation: clmData(8) },
        args: { learningRate: 1e-2, batchSize, maxSteps: steps, scheduler: 'constant', seed: 1, gradientCheckpointing },
      });
    };
    const ck = await make(true);
    const plain = await make(false);
    try {
      expect(ck.args.gradientCheckpointing).toBe(true);
      const before = await ck.evaluate();
      const lc: number[] = [];
      const lp: number[] = [];
      let n = 0;
      for (let i = 0; i < steps; i++) {
        lc.push((await ck.step()).loss);
        lp.push((await plain.step()).loss);
        if (i === 1) n = tf.memory().numTensors;
        if (i > 1) expect(tf.memory().numTensors, `tensors after step ${i + 1}`).toBe(n);
      }
      for (let i = 0; i < steps; i++) expect(Math.abs(lc[i] - lp[i]), `step ${i + 1}: ${lc[i]} vs ${lp[i]}`).toBeLessThan(1e-3);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const k = Math.min(5, Math.floor(steps / 2));
      expect(mean(lc.slice(-k))).toBeLessThan(mean(lc.slice(0, k)) - (backend === 'wasm' ? 0.4 : 0.05));
      const after = await ck.evaluate();
      expect(after.evalLoss).toBeLessThan(before.evalLoss);
    } finally {
      ck.dispose();
      plain.dispose();
    }
  });
});

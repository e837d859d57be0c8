/**
 * LoRA+ (PEFT's create_loraplus_optimizer): AdamW with per-variable learning-rate scales matches
 * torch.optim.AdamW with two param groups on a worked example; the groups PEFT builds (lora_B and 1-D tensors at
 * lr * ratio, biases and norm weights without weight decay); a training session moves B by lr * ratio.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { createPeftModel } from '../src/engine/peft';
import { adaLoraConfig } from '../src/engine/peft/adalora/config';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession, type SessionInit } from '../src/engine/session';
import type { Example } from '../src/engine/train/data';
import { AdamW, loraPlusGroups } from '../src/engine/train/optimizer';
import { FIX, fixtureModel } from './helpers';

beforeAll(async () => {
  await useNodeBackend('cpu');
});

/** torch.optim.AdamW's update for one scalar parameter, in float64 (torch/optim/adamw.py, single-tensor path). */
function torchAdamW(p: number, grads: number[], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps;
    p -= (lr / (1 - b1 ** t)) * (m / denom);
  });
  return p;
}

describe('AdamW with param groups (LoRA+)', () => {
  it('matches torch.optim.AdamW([{params: [a], lr}, {params: [b], lr: lr * ratio}], weight_decay=0.01)', () => {
    // Group A: lr 0.1; group B: lr 0.1 * 4 = 0.4; both weight_decay 0.01.
    // Step 1 (Adam's first step is lr * g / (|g| + eps)):
    //   a = 1 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899
    //   b = 2 * (1 - 0.4 * 0.01) - 0.4 * 0.25 / (0.25 + 1e-8) = 1.592
    const a = tf.variable(tf.scalar(1));
    const b = tf.variable(tf.scalar(2));
    const opt = new AdamW({ weightDecay: 0.01 });
    const groups = new Map([[a, { lrScale: 1 }], [b, { lrScale: 4 }]]);
    const step = (ga: number, gb: number) => {
      const g = new Map<tf.Variable, tf.Tensor>([[a, tf.scalar(ga)], [b, tf.scalar(gb)]]);
      opt.apply(g, 0.1, groups);
      tf.dispose([...g.values()]);
    };
    step(0.5, 0.25);
    expect(a.dataSync()[0]).toBeCloseTo(0.899, 6);
    expect(b.dataSync()[0]).toBeCloseTo(1.592, 6);
    step(-1, 0.5);
    expect(a.dataSync()[0]).toBeCloseTo(torchAdamW(1, [0.5, -1], 0.1, 0.01), 6);
    expect(b.dataSync()[0]).toBeCloseTo(torchAdamW(2, [0.25, 0.5], 0.4, 0.01), 6);
    // A per-variable weight decay (groupB_no_decay) overrides the optimizer's.
    const c = tf.variable(tf.scalar(3));
    const opt2 = new AdamW({ weightDecay: 0.01 });
    const g = new Map<tf.Variable, tf.Tensor>([[c, tf.scalar(2)]]);
    opt2.apply(g, 0.1, new Map([[c, { lrScale: 4, weightDecay: 0 }]]));
    expect(c.dataSync()[0]).toBeCloseTo(torchAdamW(3, [2], 0.4, 0), 6);
    tf.dispose([...g.values(), a, b, c]);
    opt.dispose();
    opt2.dispose();
  });

  it('groups as create_loraplus_optimizer: lora_B and 1-D tensors at lr * ratio, no decay on biases', () => {
    const base = fixtureModel('gpt2-tiny-seqcls', 'SEQ_CLS');
    const peft = createPeftModel(base, loraConfig({ taskType: 'SEQ_CLS', r: 4, targetModules: ['c_attn'], bias: 'lora_only' }), 1);
    try {
      const groups = loraPlusGroups(peft, 16, 0.05);
      const byKey = new Map([...peft.stateDict()].map(([k, v]) => [k, groups.get(v as tf.Variable)]));
      expect(byKey.size).toBe(peft.trainableVariables().length);
      for (const [k, g] of byKey) {
        if (k.includes('lora_B')) expect(g, k).toEqual({ lrScale: 16, weightDecay: 0.05 });
        else if (k.endsWith('.bias')) expect(g, k).toEqual({ lrScale: 16, weightDecay: 0 });
        else expect(g, k).toEqual({ lrScale: 1, weightDecay: 0.05 });
      }
      // lora_A, the classifier copy (2-D) in group A; the c_attn biases (1-D) in groupB_no_decay.
      expect(byKey.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!.lrScale).toBe(1);
      expect(byKey.get('base_model.model.score.weight')!.lrScale).toBe(1);
      expect(byKey.get('base_model.model.transformer.h.0.attn.c_attn.base_layer.bias')).toEqual({ lrScale: 16, weightDecay: 0 });
      expect(() => loraPlusGroups(peft, 0, 0)).toThrow(/loraplus_lr_ratio/);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it('AdaLoRA: lora_B at lr * ratio, lora_A and lora_E (2-D [r, 1]) at lr', () => {
    const base = fixtureModel('llama-tiny');
    const peft = createPeftModel(base, adaLoraConfig({ taskType: 'CAUSAL_LM', targetModules: ['q_proj'], initR: 4, targetR: 2, totalStep: 10 }), 1);
    try {
      const groups = loraPlusGroups(peft, 8, 0);
      for (const [k, v] of peft.stateDict()) expect(groups.get(v as tf.Variable)!.lrScale, k).toBe(k.endsWith('lora_B') ? 8 : 1);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });
});

function clmData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
}

describe('loraplusLrRatio in a TrainingSession', () => {
  async function firstStepB(ratio: number | null): Promise<number> {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const s = await TrainingSession.create({
      config, weights: tensors, task: 'CAUSAL_LM', peft: loraConfig({ taskType: 'CAUSAL_LM', r: 4, targetModules: ['c_attn'] }),
      data: { train: clmData(8) }, args: { learningRate: 1e-3, batchSize: 4, maxSteps: 2, scheduler: 'constant', maxGradNorm: 0, loraplusLrRatio: ratio },
    } as SessionInit);
    try {
      await s.step();
      // B starts at 0 and Adam's first step moves every element with a gradient by exactly its group's lr.
      let max = 0;
      for (const [k, t] of s.peft.stateDict()) if (k.includes('lora_B')) max = Math.max(max, tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]));
      return max;
    } finally {
      s.dispose();
    }
  }

  it('B moves by lr * ratio on the first step (and by lr without LoRA+)', async () => {
    expect(await firstStepB(null)).toBeCloseTo(1e-3, 6);
    expect(await firstStepB(16)).toBeCloseTo(16e-3, 5);
  });

  it('refuses a ratio that is not > 0', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    await expect(
      TrainingSession.create({
        config, weights: tensors, task: 'CAUSAL_LM', peft: loraConfig({ taskType: 'CAUSAL_LM', targetModules: ['c_attn'] }),
        data: { train: clmData(4) }, args: { loraplusLrRatio: -1 },
      } as SessionInit),
    ).rejects.toThrow(/loraplus_lr_ratio/);
  });
});

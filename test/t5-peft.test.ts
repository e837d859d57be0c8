/**
 * PEFT 0.15.2 on T5 (SEQ_2_SEQ_LM), against test/fixtures (README "LoRA", "Prompt tuning"), on cpu and wasm: the
 * PEFT-saved `t5-lora` (q / v in encoder SelfAttention, decoder SelfAttention and EncDecAttention) and `t5-prompt`
 * (num_transformer_submodules 2: 8 rows, only the first 4 prepended to the encoder input) adapters reproduce PEFT's
 * logits, loss and the gradient of every adapter tensor, and are written back with PEFT's keys and config;
 * target matching follows target_modules_more.json's T5 cases.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensors } from '../src/engine/io/safetensors';
import { moduleTree } from '../src/engine/models';
import { createPeftModel } from '../src/engine/peft';
import { parsePeftConfig } from '../src/engine/peft/config';
import { methodOf } from '../src/engine/peft/registry';
import type { Batch } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const TOL = 1e-4;
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return { config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) };
}

function disposeBatch(b: Batch) {
  for (const t of Object.values(b)) if (t instanceof tf.Tensor) t.dispose();
}

/** Tensor counts and trainable parameters from the README's adapter table. */
const ADAPTERS = [
  { id: 't5-lora', keys: 24, trainable: 6144 },
  { id: 't5-prompt', keys: 1, trainable: 512 },
];

describe('PEFT target matching on T5 (target_modules_more.json)', () => {
  const cases: any[] = readJson('target_modules_more.json').cases.filter((c: any) => c.model === 't5-tiny');

  it('has the three T5 cases', () => expect(cases.map((c) => c.id)).toEqual(['t5-q-v', 't5-decoder-regex', 't5-all-linear']));

  it.each(cases.map((c) => [c.id, c]))('%s', (_id, c: any) => {
    const raw = readJson('models/t5-tiny/config.json');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', ...c.config }));
    const rep = methodOf('LORA').resolve({ modules: moduleTree(raw), rawConfig: raw, task: 'SEQ_2_SEQ_LM' }, cfg);
    expect(rep.matched).toEqual(c.matched_modules);
    expect(rep.modulesToSave).toEqual(c.modules_to_save);
    expect(rep.savedTargetModules).toEqual(c.saved_target_modules);
    expect({ trainable: rep.count.trainable, all: rep.count.all }).toEqual({ trainable: c.trainable_params, all: c.all_params });
  });

  it('a LoraConfig without target_modules takes PEFT\'s T5 default ["q", "v"]', () => {
    const raw = readJson('models/t5-tiny/config.json');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', task_type: 'SEQ_2_SEQ_LM', r: 4, lora_alpha: 8 }));
    const rep = methodOf('LORA').resolve({ modules: moduleTree(raw), rawConfig: raw, task: 'SEQ_2_SEQ_LM' }, cfg);
    expect(rep.matched).toEqual(cases[0].matched_modules);
  });
});

describe.each(BACKENDS)('on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(ADAPTERS)('$id: the PEFT-saved adapter reproduces PEFT\'s logits, loss and gradients', async ({ id, keys, trainable }) => {
    const base = fixtureModel('t5-tiny');
    const peft = loadAdapter(base, adapterFiles(id));
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch('t5-tiny');
    try {
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }));
      expect(logits.shape).toEqual(expected.get('logits')!.shape);
      expect(maxAbsDiff(logits.dataSync(), expected.get('logits')!.data)).toBeLessThan(TOL);
      logits.dispose();
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(TOL);
      const byVar = new Map([...state].map(([k, v]) => [v, k]));
      expect(grads.size).toBe(keys);
      for (const [v, g] of grads) {
        const key = byVar.get(v as tf.Variable)!;
        const ref = expected.get(key)!;
        expect(ref, `gradient for ${key}`).toBeDefined();
        expect(g.shape).toEqual(ref.shape);
        const got = g.dataSync();
        expect(relErr(got, ref.data), key).toBeLessThan(1e-3);
        // t5-prompt: the decoder's rows 4-7 are never read, so their gradient is exactly 0 (README).
        if (id === 't5-prompt') expect(Math.max(...[...got.slice(4 * 64)].map(Math.abs))).toBe(0);
        g.dispose();
      }
      // Written back with PEFT's keys, shapes and adapter_config.json fields.
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/t5-tiny' });
      const written = readSafetensors(files['adapter_model.safetensors']).tensors;
      const original = readSafetensors(adapterFiles(id).weights).tensors;
      expect([...written.keys()].sort()).toEqual([...original.keys()].sort());
      for (const [k, t] of original) expect(written.get(k)!.shape).toEqual(t.shape);
      const cfg = JSON.parse(files['adapter_config.json'] as string);
      expect(cfg).toEqual(JSON.parse(adapterFiles(id).config));
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('a fresh SEQ_2_SEQ_LM prompt-tuning adapter has 2 * num_virtual_tokens rows and writes num_transformer_submodules 2', async () => {
    const base = fixtureModel('t5-tiny');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'PROMPT_TUNING', task_type: 'SEQ_2_SEQ_LM', num_virtual_tokens: 3 }));
    const peft = createPeftModel(base, cfg, 1);
    try {
      expect(peft.stateDict().get('prompt_embeddings')!.shape).toEqual([6, 64]);
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/t5-tiny' });
      const json = JSON.parse(files['adapter_config.json'] as string);
      expect(json).toMatchObject({ num_transformer_submodules: 2, num_virtual_tokens: 3, token_dim: 64, num_layers: 2, num_attention_heads: 4, task_type: 'SEQ_2_SEQ_LM' });
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it.each([
    // IA3: PEFT's T5 defaults k, v, wo with wo feed-forward (scales its input: ia3_l [1, d_ff]); k / v scale their
    // output (ia3_l [inner, 1]). 12 k / v (encoder self, decoder self and cross) + 4 wo.
    { type: 'IA3', extra: {}, keys: 16, shapes: { 'encoder.block.0.layer.0.SelfAttention.k.ia3_l': [64, 1], 'decoder.block.1.layer.2.DenseReluDense.wo.ia3_l': [1, 128] } },
    // AdaLoRA: q, v; init_r 12 by default: lora_A [12, 64], lora_E [12, 1], lora_B [64, 12] per module.
    { type: 'ADALORA', extra: { total_step: 10 }, keys: 36, shapes: { 'encoder.block.0.layer.0.SelfAttention.q.lora_E': [12, 1], 'decoder.block.0.layer.1.EncDecAttention.v.lora_B': [64, 12] } },
  ])('$type on T5 with PEFT\'s default targets: saved keys and shapes, and every tensor gets a gradient', async ({ type, extra, keys, shapes }) => {
    const base = fixtureModel('t5-tiny');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: type, task_type: 'SEQ_2_SEQ_LM', ...extra }));
    const peft = createPeftModel(base, cfg, 1);
    const batch = referenceBatch('t5-tiny');
    try {
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      for (const [k, shape] of Object.entries(shapes)) expect(state.get(`base_model.model.${k}`)?.shape, k).toEqual(shape);
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Number.isFinite(loss)).toBe(true);
      expect(grads.size).toBe(keys);
      for (const g of grads.values()) g.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });
});

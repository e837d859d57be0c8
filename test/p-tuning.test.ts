/**
 * P-tuning (P_TUNING, PEFT's PromptEncoder) against the peft 0.15.2 fixtures: a PEFT-saved adapter loads as a
 * plain table and reproduces PEFT's logits, loss and the table's gradient; the encoder (encoder.safetensors, MLP
 * and bidirectional LSTM) reproduces them too, with every encoder gradient; a fresh model exports exactly
 * PEFT's file and config and re-imports to the same logits; training keeps a flat tensor count and lowers the
 * loss. Both on the cpu and the wasm backend.
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
import { moduleTree } from '../src/engine/models';
import { createPeftModel } from '../src/engine/peft';
import { formatAdapterConfigJson, parsePeftConfig, peftConfigToJson } from '../src/engine/peft/config';
import { methodOf } from '../src/engine/peft/registry';
import { pTuningConfig, type PTuningConfig } from '../src/engine/peft/p-tuning/config';
import { PTuningModel } from '../src/engine/peft/p-tuning/model';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { AdamW } from '../src/engine/train/optimizer';
import { lossAndGrads, optimizerStep, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const CASES = [
  { id: 'gpt2-ptuning-mlp', model: 'gpt2-tiny', trainable: 5504 },
  { id: 'gpt2-ptuning-lstm', model: 'gpt2-tiny', trainable: 33664 },
  { id: 'bert-seqcls-ptuning', model: 'bert-tiny-seqcls', trainable: 5504 },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  };
}

const disposeBatch = (b: Batch) => [b.inputIds, b.attentionMask, b.labels].forEach((t) => t.dispose());

function logitsOf(peft: { forward: PTuningModel['forward'] }, b: Batch): Float32Array {
  return tf.tidy(() => peft.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }).dataSync() as Float32Array);
}

describe.each(BACKENDS)('P-tuning on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: the PEFT file loads as a plain table: PEFT\'s logits, loss and the table\'s gradient', async ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id)) as PTuningModel;
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      expect(peft).toBeInstanceOf(PTuningModel);
      expect(peft.mode).toBe('table');
      const logits = logitsOf(peft, batch);
      expect(logits.length).toBe(expected.get('logits')!.data.length);
      expect(maxAbsDiff(logits, expected.get('logits')!.data)).toBeLessThan(1e-4);
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      const table = peft.stateDict().get('prompt_embeddings') as tf.Variable;
      const g = grads.get(table)!;
      // PEFT's prompt_embeddings gradient is dLoss/d(encoder output), which a reloaded table gets.
      expect(relErr(g.dataSync(), expected.get('prompt_embeddings')!.data)).toBeLessThan(1e-3);
      for (const t of grads.values()) t.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: the encoder reproduces PEFT\'s logits, loss, saved table and every encoder gradient', async ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = createPeftModel(base, parsePeftConfig(adapterFiles(id).config), 5) as PTuningModel;
    const enc = fixtureTensors('adapters', id, 'encoder.safetensors');
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      peft.loadEncoderState(enc, 'encoder.safetensors');
      expect(peft.mode).toBe('encoder');
      const state = peft.encoderState();
      expect([...state.keys()].sort()).toEqual([...enc.keys()].sort());
      // What PEFT saved is the encoder's output.
      const saved = fixtureTensors('adapters', id, 'adapter_model.safetensors').get('prompt_embeddings')!;
      expect(maxAbsDiff(peft.stateDict().get('prompt_embeddings')!.dataSync(), saved.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(logitsOf(peft, batch), expected.get('logits')!.data)).toBeLessThan(1e-4);
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      for (const [name, v] of state) {
        const g = grads.get(v as tf.Variable);
        const ref = expected.get(`grad:${name}`)!;
        expect(g, name).toBeDefined();
        expect(g!.shape).toEqual(ref.shape);
        expect(relErr(g!.dataSync(), ref.data), name).toBeLessThan(1e-3);
      }
      for (const t of grads.values()) t.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: a fresh adapter exports PEFT\'s keys, shapes, dtypes, metadata and config, and re-imports', async ({ id, model }) => {
    const files = adapterFiles(id);
    const base = fixtureModel(model);
    const peft = createPeftModel(base, parsePeftConfig(files.config), 7) as PTuningModel;
    const batch = referenceBatch(model);
    try {
      const out = await exportAdapter(peft, { baseModelNameOrPath: `models/${model}` });
      expect(out['adapter_config.json']).toBe(files.config);
      const ours = readSafetensors(out['adapter_model.safetensors']);
      const theirs = readSafetensors(files.weights);
      // SEQ_CLS: the trained head beside the prompt (PEFT >= 0.16's modules_to_save for prompt methods).
      const head = base.task === 'SEQ_CLS' ? ['base_model.classifier.bias', 'base_model.classifier.weight'] : [];
      expect([...ours.tensors.keys()].sort()).toEqual([...theirs.tensors.keys(), ...head].sort());
      for (const [k, t] of theirs.tensors) {
        expect(ours.tensors.get(k)!.shape, k).toEqual(t.shape);
        expect(ours.tensors.get(k)!.dtype, k).toBe(t.dtype);
      }
      for (const k of head) expect(ours.tensors.get(k)!.shape).toEqual(base.params.get(k.slice('base_model.'.length))!.shape);
      expect(ours.metadata).toEqual(theirs.metadata);
      // The encoder is not in PEFT's file; it is what encoderState() holds.
      expect(peft.encoderState().size).toBeGreaterThan(1);

      const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] }) as PTuningModel;
      expect(again.mode).toBe('table');
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(again, batch))).toBe(0);
      again.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: counts PEFT\'s trainable parameters (encoder included; SEQ_CLS adds the head)', ({ id, model, trainable }) => {
    const { config } = loadModelDir(join(FIX, 'models', model));
    const cfg = parsePeftConfig(adapterFiles(id).config);
    const modules = moduleTree(config);
    const rep = methodOf('P_TUNING').resolve({ modules, rawConfig: config, task: cfg.taskType! }, cfg);
    const head = cfg.taskType === 'SEQ_CLS' ? 64 * 2 + 2 : 0;
    expect(rep.count.trainable).toBe(trainable + head);
    expect(rep.modulesToSave).toEqual(cfg.taskType === 'SEQ_CLS' ? ['classifier'] : []);
    expect(rep.virtualTokens).toBe(4);
    const base = fixtureModel(model);
    const peft = createPeftModel(base, cfg, 1);
    try {
      expect(peft.trainableVariables().reduce((n, v) => n + v.size, 0)).toBe(trainable + head);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it('gradient checkpointing gives the same loss and encoder gradients (LSTM, GPT-2 dropout on)', async () => {
    const base = fixtureModel('gpt2-tiny');
    const peft = createPeftModel(base, pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 3, encoderHiddenSize: 8, encoderReparameterizationType: 'LSTM', encoderNumLayers: 1 }), 2);
    const batch = referenceBatch('gpt2-tiny');
    const grads = async (checkpoint: boolean) => {
      const r = await lossAndGrads(peftTrainable(peft, { checkpoint, seed: () => 9 }), batch, true);
      const out = new Map([...r.grads].map(([v, g]) => [v, Float32Array.from(g.dataSync())]));
      for (const g of r.grads.values()) g.dispose();
      return { loss: r.loss, out };
    };
    try {
      const plain = await grads(false);
      const ckpt = await grads(true);
      expect(Math.abs(plain.loss - ckpt.loss)).toBeLessThan(1e-5);
      expect(plain.out.size).toBe(peft.trainableVariables().length);
      for (const v of peft.trainableVariables()) expect(relErr(ckpt.out.get(v)!, plain.out.get(v)!), v.name).toBeLessThan(1e-4);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('training steps keep the tensor count flat (MLP and a 2-layer LSTM with dropout), and the encoder learns', async () => {
    for (const cfg of [
      pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, encoderHiddenSize: 16 }),
      pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, encoderHiddenSize: 16, encoderReparameterizationType: 'LSTM', encoderNumLayers: 2, encoderDropout: 0.1 }),
    ]) {
      const base = fixtureModel('gpt2-tiny');
      const peft = createPeftModel(base, cfg, 3) as PTuningModel;
      const batch = referenceBatch('gpt2-tiny');
      const opt = new AdamW({ weightDecay: 0 });
      const trainable = peftTrainable(peft, { seed: (() => { let s = 0; return () => s++; })() });
      try {
        const emb0 = peft.encoderState().get('prompt_encoder.default.embedding.weight')!.dataSync().slice();
        const losses: number[] = [];
        let n = 0;
        for (let i = 0; i < 6; i++) {
          losses.push((await optimizerStep(trainable, opt, [batch], 1e-2, 1)).loss);
          if (i === 1) n = tf.memory().numTensors;
          if (i > 1) expect(tf.memory().numTensors, `tensors after step ${i + 1}`).toBe(n);
        }
        expect(losses[5]).toBeLessThan(losses[0]);
        expect(peft.encoderState().get('prompt_encoder.default.embedding.weight')!.dataSync()).not.toEqual(emb0);
        opt.dispose();
      } finally {
        disposeBatch(batch);
        peft.dispose();
        base.dispose();
      }
    }
  });

  it('a TrainingSession with P-tuning lowers the loss (GPT-2 CLM with the MLP, GPT-2 SEQ_CLS with the LSTM)', async () => {
    const clm: Example[] = Array.from({ length: 16 }, (_, i) => ({ inputIds: Array.from({ length: 12 }, (_, j) => 10 + ((i + j) % 6) * 7) }));
    // GPT2ForSequenceClassification reads the last token: the label is that token (500 or 400). (On the tiny random
    // BERT the pooled [CLS] features hardly depend on the input, so no prompt method separates them in a few steps.)
    const cls: Example[] = Array.from({ length: 32 }, (_, i) => {
      const label = i % 2;
      return { inputIds: [...Array.from({ length: 7 }, (_, j) => 20 + ((i * 7 + j * 13) % 300)), label ? 500 : 400], label };
    });
    // P-tuning moves the prompt through its encoder: a dozen steps before the classifier's loss drops for sure.
    const steps = 12;
    const runs: [string, PTuningConfig, Example[], number][] = [
      ['gpt2-tiny', pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, encoderHiddenSize: 32 }), clm, 3e-3],
      ['gpt2-tiny-seqcls', pTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 4, encoderHiddenSize: 16, encoderReparameterizationType: 'LSTM', encoderNumLayers: 1 }), cls, 3e-2],
    ];
    for (const [model, peft, train, lr] of runs) {
      const { config, tensors } = loadModelDir(join(FIX, 'models', model));
      const s = await TrainingSession.create({
        config, weights: tensors, peft, data: { train, validation: train },
        args: { learningRate: lr, batchSize: 8, maxSteps: steps, scheduler: 'constant', seed: 4 },
      });
      try {
        const before = await s.evaluate();
        for (let i = 0; i < steps; i++) await s.step();
        const after = await s.evaluate();
        expect(after.evalLoss, `${model}: ${before.evalLoss} -> ${after.evalLoss}`).toBeLessThan(before.evalLoss - 0.03);
        if (s.model.task === 'SEQ_CLS') expect(after.accuracy).toBeGreaterThan(before.accuracy);
        const files = await s.exportAdapter();
        expect(JSON.parse(files['adapter_config.json']).peft_type).toBe('P_TUNING');
      } finally {
        s.dispose();
      }
    }
  });
});

describe('P-tuning config', () => {
  it('writes PEFT\'s adapter_config.json from a config and the model facts, and round-trips it', () => {
    for (const c of CASES) {
      const text = adapterFiles(c.id).config;
      const parsed = parsePeftConfig(text) as PTuningConfig;
      expect(parsed).toMatchObject({ peftType: 'P_TUNING', numVirtualTokens: 4, encoderHiddenSize: 32 });
      expect(formatAdapterConfigJson(peftConfigToJson(parsed, { baseModelNameOrPath: parsed.baseModelNameOrPath ?? null }))).toBe(text);
      const fresh = pTuningConfig({
        taskType: parsed.taskType, numVirtualTokens: 4, encoderHiddenSize: 32,
        encoderReparameterizationType: parsed.encoderReparameterizationType, encoderNumLayers: parsed.encoderNumLayers,
      });
      const json = peftConfigToJson(fresh, { baseModelNameOrPath: `models/${c.model}`, tokenDim: 64, numLayers: 2, numAttentionHeads: 2 });
      expect(formatAdapterConfigJson(json)).toBe(text);
    }
    // encoder_hidden_size None is written as token_dim, as get_peft_model fills it.
    const json = peftConfigToJson(pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4 }), { baseModelNameOrPath: null, tokenDim: 64, numLayers: 2, numAttentionHeads: 2 });
    expect(json.encoder_hidden_size).toBe(64);
  });

  it('refuses what PEFT refuses or PEFT Studio does not do', () => {
    const bad = (p: Partial<PTuningConfig>) => {
      try {
        pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, ...p });
      } catch (e) {
        expect(e).toBeInstanceOf(EngineError);
        expect((e as EngineError).code).toBe('BAD_PEFT_CONFIG');
        return (e as EngineError).message;
      }
      throw new Error('expected an EngineError');
    };
    expect(bad({ encoderReparameterizationType: 'GRU' as never })).toMatch(/Prompt encoder type not recognized/);
    // PeftModelForTokenClassification prepends the virtual tokens but not to the labels: the loss fails on the shapes.
    expect(bad({ taskType: 'TOKEN_CLS' as never })).toMatch(/PEFT's P-tuning cannot train TOKEN_CLS: it prepends the virtual tokens.*LoRA, DoRA, IA3, AdaLoRA or prefix tuning/);
    expect(bad({ numVirtualTokens: 0 })).toMatch(/num_virtual_tokens must be an integer >= 1/);
    expect(bad({ encoderDropout: 1 })).toMatch(/encoder_dropout must be >= 0 and < 1/);
    expect(bad({ encoderHiddenSize: 0 })).toMatch(/encoder_hidden_size must be >= 1/);
    expect(bad({ modulesToSave: ['transformer.h.0'] })).toMatch(/modules_to_save \["transformer.h.0"\] with P-tuning is not supported yet/);
    // A PEFT >= 0.16 file lists the SEQ_CLS head it trained: accepted.
    const json = { ...JSON.parse(adapterFiles('bert-seqcls-ptuning').config), modules_to_save: ['classifier', 'score'] };
    expect(parsePeftConfig(json).peftType).toBe('P_TUNING');
  });

  it('a PEFT file for another model is refused by name', () => {
    const base = fixtureModel('llama-tiny');
    try {
      const files = adapterFiles('gpt2-ptuning-mlp');
      const cfg = { ...JSON.parse(files.config), token_dim: 32 };
      expect(() => loadAdapter(base, { config: cfg, weights: files.weights })).toThrow(/token_dim 32 differs from the model's hidden size 64/);
      expect(() => loadAdapter(base, { config: { ...cfg, token_dim: 64, num_virtual_tokens: 5 }, weights: files.weights })).toThrow(/prompt_embeddings has shape \[4,64\] but this model expects \[5,64\]/);
    } finally {
      base.dispose();
    }
  });
});

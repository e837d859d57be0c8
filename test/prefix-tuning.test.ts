/**
 * Prefix tuning (PREFIX_TUNING) against the peft 0.15.2 fixtures on GPT-2, LLaMA (grouped-query: 2 kv heads) and
 * BERT SEQ_CLS: the PEFT file's table gives exactly the keys / values PEFT fed the backbone, PEFT's logits, loss
 * and the table's gradient; the projection (encoder.safetensors) gives every encoder gradient; a fresh model
 * exports exactly PEFT's file and config and re-imports to the same logits; gradient checkpointing gives the
 * same gradients; the KV cache decodes with the prefix; training keeps a flat tensor count and lowers the loss.
 * Also the SEQ_CLS head every prompt method now trains (prompt tuning, P-tuning, prefix tuning): its gradient,
 * its file keys, and files without it. Both on the cpu and the wasm backend.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors, writeSafetensors } from '../src/engine/io/safetensors';
import { buildModel, moduleTree } from '../src/engine/models';
import type { Model } from '../src/engine/models/types';
import { createPeftModel } from '../src/engine/peft';
import { formatAdapterConfigJson, parsePeftConfig, peftConfigToJson, type PeftConfig } from '../src/engine/peft/config';
import type { PeftModel } from '../src/engine/peft/model';
import { methodOf } from '../src/engine/peft/registry';
import { pTuningConfig } from '../src/engine/peft/p-tuning/config';
import { prefixTuningConfig, type PrefixTuningConfig } from '../src/engine/peft/prefix-tuning/config';
import { PrefixTuningModel } from '../src/engine/peft/prefix-tuning/model';
import { promptTuningConfig } from '../src/engine/peft/prompt-tuning/config';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { argmax, generateIds } from '../src/engine/train/generate';
import { AdamW } from '../src/engine/train/optimizer';
import { lossAndGrads, optimizerStep, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const CASES = [
  { id: 'gpt2-prefix', model: 'gpt2-tiny', trainable: 1024 },
  { id: 'gpt2-prefix-proj', model: 'gpt2-tiny', trainable: 10784 },
  { id: 'llama-prefix', model: 'llama-tiny', trainable: 512 },
  { id: 'bert-seqcls-prefix', model: 'bert-tiny-seqcls', trainable: 1024 },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  };
}

const disposeBatch = (b: Batch) => [b.inputIds, b.attentionMask, b.labels].forEach((t) => t.dispose());

function logitsOf(peft: PeftModel, b: Batch): Float32Array {
  return tf.tidy(() => peft.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }).dataSync() as Float32Array);
}

interface Result {
  loss: number;
  grads: Map<tf.Variable, Float32Array>;
}

async function run(peft: PeftModel, batch: Batch, o: { checkpoint?: boolean; training?: boolean; seed?: number } = {}): Promise<Result> {
  const r = await lossAndGrads(peftTrainable(peft, { checkpoint: o.checkpoint, seed: () => o.seed ?? 0 }), batch, !!o.training);
  const grads = new Map<tf.Variable, Float32Array>();
  for (const [v, g] of r.grads) {
    grads.set(v, Float32Array.from(g.dataSync()));
    g.dispose();
  }
  return { loss: r.loss, grads };
}

function modelWith(model: string, overrides: Record<string, unknown>): Model {
  const { config, tensors } = loadModelDir(join(FIX, 'models', model));
  return buildModel({ ...config, ...overrides }, tensors);
}

describe.each(BACKENDS)('prefix tuning on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: the PEFT table gives PEFT\'s past_key_values, logits, loss and the table\'s gradient', async ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id)) as PrefixTuningModel;
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      expect(peft).toBeInstanceOf(PrefixTuningModel);
      expect(peft.mode).toBe('table');
      // The layout: layer i's key = block 2i, value = block 2i + 1 of past_key_values [2L, B, H, V, D].
      const pkv = expected.get('past_key_values')!;
      const [, B, H, V, D] = pkv.shape;
      const per = H * V * D;
      const hooks = peft.hooks(false).pastKeyValues!;
      expect(hooks.length).toBe(V);
      for (let i = 0; i < base.config.numLayers; i++) {
        const { k, v } = hooks.layer(i);
        expect(k.shape).toEqual([1, H, V, D]);
        for (let b = 0; b < B; b++) {
          const at = (blk: number) => pkv.data.subarray((blk * B + b) * per, (blk * B + b + 1) * per);
          expect(maxAbsDiff(k.dataSync(), at(2 * i))).toBe(0);
          expect(maxAbsDiff(v.dataSync(), at(2 * i + 1))).toBe(0);
        }
        k.dispose();
        v.dispose();
      }
      const logits = logitsOf(peft, batch);
      expect(logits.length).toBe(expected.get('logits')!.data.length);
      expect(maxAbsDiff(logits, expected.get('logits')!.data)).toBeLessThan(1e-4);
      const { loss, grads } = await run(peft, batch);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      const table = peft.stateDict().get('prompt_embeddings') as tf.Variable;
      expect(relErr(grads.get(table)!, expected.get('prompt_embeddings')!.data)).toBeLessThan(1e-3);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('gpt2-prefix-proj: the projection reproduces PEFT\'s table, logits, loss and every encoder gradient', async () => {
    const id = 'gpt2-prefix-proj';
    const base = fixtureModel('gpt2-tiny');
    const peft = createPeftModel(base, parsePeftConfig(adapterFiles(id).config), 5) as PrefixTuningModel;
    const enc = fixtureTensors('adapters', id, 'encoder.safetensors');
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch('gpt2-tiny');
    try {
      expect(peft.mode).toBe('encoder');
      peft.loadEncoderState(enc, 'encoder.safetensors');
      const state = peft.encoderState();
      expect([...state.keys()].sort()).toEqual([...enc.keys()].sort());
      const saved = fixtureTensors('adapters', id, 'adapter_model.safetensors').get('prompt_embeddings')!;
      expect(maxAbsDiff(peft.stateDict().get('prompt_embeddings')!.dataSync(), saved.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(logitsOf(peft, batch), expected.get('logits')!.data)).toBeLessThan(1e-4);
      const { loss, grads } = await run(peft, batch);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
      for (const [name, v] of state) {
        const ref = expected.get(`grad:${name}`)!;
        expect(grads.get(v as tf.Variable), name).toBeDefined();
        expect(relErr(grads.get(v as tf.Variable)!, ref.data), name).toBeLessThan(1e-3);
      }
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: a fresh adapter exports PEFT\'s keys, shapes, dtypes, metadata and config, and re-imports', async ({ id, model }) => {
    const files = adapterFiles(id);
    const base = fixtureModel(model);
    const peft = createPeftModel(base, parsePeftConfig(files.config), 7);
    const batch = referenceBatch(model);
    try {
      const out = await exportAdapter(peft, { baseModelNameOrPath: `models/${model}` });
      expect(out['adapter_config.json']).toBe(files.config);
      const ours = readSafetensors(out['adapter_model.safetensors']);
      const theirs = readSafetensors(files.weights);
      const head = base.task === 'SEQ_CLS' ? ['base_model.classifier.bias', 'base_model.classifier.weight'] : [];
      expect([...ours.tensors.keys()].sort()).toEqual([...theirs.tensors.keys(), ...head].sort());
      for (const [k, t] of theirs.tensors) {
        expect(ours.tensors.get(k)!.shape, k).toEqual(t.shape);
        expect(ours.tensors.get(k)!.dtype, k).toBe(t.dtype);
      }
      expect(ours.metadata).toEqual(theirs.metadata);
      const again = loadAdapter(base, { config: out['adapter_config.json'], weights: out['adapter_model.safetensors'] });
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(again, batch))).toBe(0);
      again.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: counts PEFT\'s trainable parameters (SEQ_CLS adds the head)', ({ id, model, trainable }) => {
    const { config } = loadModelDir(join(FIX, 'models', model));
    const cfg = parsePeftConfig(adapterFiles(id).config);
    const rep = methodOf('PREFIX_TUNING').resolve({ modules: moduleTree(config), rawConfig: config, task: cfg.taskType! }, cfg);
    const head = cfg.taskType === 'SEQ_CLS' ? 64 * 2 + 2 : 0;
    expect(rep.count.trainable).toBe(trainable + head);
    const base = fixtureModel(model);
    const peft = createPeftModel(base, cfg, 1);
    try {
      expect(peft.trainableVariables().reduce((n, v) => n + v.size, 0)).toBe(trainable + head);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it.each<[string, string, Record<string, unknown>, Partial<PrefixTuningConfig>]>([
    ['gpt2-tiny (dropout 0.1)', 'gpt2-tiny', {}, { taskType: 'CAUSAL_LM' }],
    ['gpt2-tiny, prefix_projection', 'gpt2-tiny', {}, { taskType: 'CAUSAL_LM', prefixProjection: true, encoderHiddenSize: 16 }],
    ['llama-tiny (GQA, attention dropout 0.1)', 'llama-tiny', { attention_dropout: 0.1 }, { taskType: 'CAUSAL_LM' }],
    ['bert-tiny-seqcls (head trained too)', 'bert-tiny-seqcls', {}, { taskType: 'SEQ_CLS', prefixProjection: true }],
  ])('%s: gradient checkpointing gives the same loss and gradients, dropout off and on', async (_n, model, overrides, p) => {
    const base = modelWith(model, overrides);
    const peft = createPeftModel(base, prefixTuningConfig({ numVirtualTokens: 3, ...p } as PrefixTuningConfig), 2);
    const batch = referenceBatch(model);
    try {
      const vars = peft.trainableVariables();
      const same = (got: Result, want: Result, label: string) => {
        expect(Math.abs(got.loss - want.loss), label).toBeLessThan(1e-5);
        expect(want.grads.size, label).toBe(vars.length);
        for (const v of vars) {
          const w = want.grads.get(v)!;
          expect(Math.max(...w.map(Math.abs)), `${label}: ${v.name} has a zero gradient`).toBeGreaterThan(0);
          expect(got.grads.get(v), `${label}: ${v.name} has no gradient with checkpointing`).toBeDefined();
          expect(relErr(got.grads.get(v)!, w), `${label}: ${v.name}`).toBeLessThan(1e-4);
        }
      };
      await run(peft, batch); // fills the shape caches
      const start = tf.memory().numTensors;
      same(await run(peft, batch, { checkpoint: true }), await run(peft, batch), 'dropout off');
      const plain = await run(peft, batch, { training: true, seed: 77 });
      expect(Math.abs(plain.loss - (await run(peft, batch)).loss)).toBeGreaterThan(1e-5);
      same(await run(peft, batch, { checkpoint: true, training: true, seed: 77 }), plain, 'dropout on');
      expect(tf.memory().numTensors).toBe(start);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(['gpt2-prefix', 'gpt2-prefix-proj', 'llama-prefix'])('%s: KV-cache decoding with the prefix equals the forward; greedy tokens equal the no-cache path', async (id) => {
    const model = id.startsWith('llama') ? 'llama-tiny' : 'gpt2-tiny';
    const base = fixtureModel(model);
    const files = adapterFiles(id);
    // The projection case decodes with its encoder (computed prefix), the others with the PEFT table.
    const peft = id.endsWith('-proj') ? createPeftModel(base, parsePeftConfig(files.config), 3) : loadAdapter(base, files);
    const prompt = [5, 17, 300, 42, 9, 123, 7];
    const decodeOnce = async () => {
      const dec = base.startDecoding!(prompt, peft.hooks(false));
      await dec.logits.data();
      dec.next(1);
      dec.dispose();
    };
    try {
      await decodeOnce(); // fills the shape caches (causal masks and RoPE tables at the prefix's offset)
      const before = tf.memory().numTensors;
      await decodeOnce();
      expect(tf.memory().numTensors, 'a decoding frees what it made').toBe(before);
      const dec = base.startDecoding!(prompt, peft.hooks(false));
      const seq = [...prompt];
      const cached: Float32Array[] = [];
      for (let n = 0; n <= 6; n++) {
        const l = Float32Array.from((await dec.logits.data()) as Float32Array);
        cached.push(l);
        if (n === 6) break;
        seq.push(argmax(l));
        dec.next(seq[seq.length - 1]);
      }
      dec.dispose();
      const full = tf.tidy(() => peft.forward({ inputIds: tf.tensor2d([seq], [1, seq.length], 'int32') }));
      const rows = full.dataSync();
      const [, S, Vv] = full.shape;
      full.dispose();
      cached.forEach((l, n) => {
        const pos = S! - 1 - 6 + n;
        expect(maxAbsDiff(l, rows.subarray(pos * Vv!, (pos + 1) * Vv!)), `position ${pos}`).toBeLessThan(1e-4);
      });
      const a = await generateIds(peft, prompt, { maxNewTokens: 8, temperature: 0 });
      const b = await generateIds(peft, prompt, { maxNewTokens: 8, temperature: 0, cache: false });
      expect(a).toHaveLength(8);
      expect(a).toEqual(b);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it.each(['gpt2-prefix', 'llama-prefix'])('%s: cached greedy decoding up to the last position equals the no-cache path', async (id) => {
    const c = CASES.find((x) => x.id === id)!;
    const base = fixtureModel(c.model);
    const peft = loadAdapter(base, adapterFiles(id));
    try {
      // 4 prefix positions + 118 prompt tokens + 6 new ones: the cache fills all 128 positions.
      const prompt = Array.from({ length: 118 }, (_, i) => 1 + ((i * 37) % 900));
      const a = await generateIds(peft, prompt, { maxNewTokens: 6, temperature: 0 });
      const b = await generateIds(peft, prompt, { maxNewTokens: 6, temperature: 0, cache: false });
      expect(a).toHaveLength(6);
      expect(a).toEqual(b);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it('training steps keep the tensor count flat (table and projection), and the prefix learns', async () => {
    for (const p of [{}, { prefixProjection: true, encoderHiddenSize: 16 }]) {
      const base = fixtureModel('gpt2-tiny');
      const peft = createPeftModel(base, prefixTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, ...p }), 3);
      const batch = referenceBatch('gpt2-tiny');
      const opt = new AdamW({ weightDecay: 0 });
      let seed = 0;
      const trainable = peftTrainable(peft, { seed: () => seed++ });
      try {
        const losses: number[] = [];
        let n = 0;
        for (let i = 0; i < 6; i++) {
          losses.push((await optimizerStep(trainable, opt, [batch], 1e-2, 1)).loss);
          if (i === 1) n = tf.memory().numTensors;
          if (i > 1) expect(tf.memory().numTensors, `tensors after step ${i + 1}`).toBe(n);
        }
        expect(losses[5]).toBeLessThan(losses[0]);
        opt.dispose();
      } finally {
        disposeBatch(batch);
        peft.dispose();
        base.dispose();
      }
    }
  });

  it('a TrainingSession with prefix tuning lowers the loss (GPT-2 CLM, GPT-2 SEQ_CLS with the projection)', async () => {
    const clm: Example[] = Array.from({ length: 16 }, (_, i) => ({ inputIds: Array.from({ length: 12 }, (_, j) => 10 + ((i + j) % 6) * 7) }));
    // GPT2ForSequenceClassification reads the last token: the label is that token (500 or 400). (On the tiny random
    // BERT the pooled [CLS] features hardly depend on the input, so no prompt method separates them in a few steps.)
    const cls: Example[] = Array.from({ length: 32 }, (_, i) => {
      const label = i % 2;
      return { inputIds: [...Array.from({ length: 7 }, (_, j) => 20 + ((i * 7 + j * 13) % 300)), label ? 500 : 400], label };
    });
    // The cpu backend is much slower: a shorter run there.
    const steps = backend === 'wasm' ? 12 : 6;
    const runs: [string, PeftConfig, Example[], number][] = [
      ['gpt2-tiny', prefixTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4 }), clm, 3e-2],
      ['gpt2-tiny-seqcls', prefixTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 4, prefixProjection: true, encoderHiddenSize: 16 }), cls, 1e-2],
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
        expect(JSON.parse(files['adapter_config.json']).peft_type).toBe('PREFIX_TUNING');
      } finally {
        s.dispose();
      }
    }
  });

  /** Every prompt method on each SEQ_CLS model: the head copy's gradient, checked without PEFT (see below). */
  const HEADS: [string, string, () => PeftConfig][] = [
    ['prompt tuning', 'bert-tiny-seqcls', () => promptTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 3 })],
    ['P-tuning', 'gpt2-tiny-seqcls', () => pTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 3, encoderHiddenSize: 8 })],
    ['prefix tuning', 'bert-tiny-seqcls', () => prefixTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 3 })],
    ['prefix tuning', 'gpt2-tiny-seqcls', () => prefixTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 3 })],
  ];

  it.each(HEADS)('%s on %s trains the head copy with the gradient of a linear head', async (_m, model, cfg) => {
    const base = fixtureModel(model);
    const peft = createPeftModel(base, cfg(), 4);
    const batch = referenceBatch(model);
    try {
      const head = base.heads.classifier!;
      const keyed = [...peft.stateDict()].filter(([k]) => k.startsWith('base_model.'));
      expect(keyed.map(([k]) => k).sort()).toEqual(Object.keys(base.modules.find((m) => m.name === head)!.params).map((p) => `base_model.${head}.${p}`).sort());
      const w = keyed.find(([k]) => k.endsWith('.weight'))![1] as tf.Variable;
      const bias = keyed.find(([k]) => k.endsWith('.bias'))?.[1] as tf.Variable | undefined;
      const { grads } = await run(peft, batch);
      // logits = W p + b is linear in W: raising W[0, c] by 1 raises row b's logit 0 by p_b[c], so the pooled
      // features p come from forwards alone, and dL/dW = sum_b dL/dlogits_b p_b^T with dL/dlogits = (softmax - y) / B.
      const logits = logitsOf(peft, batch);
      const labels = batch.labels.dataSync();
      const [C, F] = w.shape;
      const B = labels.length;
      const dl = new Float32Array(B * C);
      for (let b = 0; b < B; b++) {
        const row = logits.subarray(b * C, (b + 1) * C);
        const m = Math.max(...row);
        const e = Array.from(row, (x) => Math.exp(x - m));
        const s = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < C; c++) dl[b * C + c] = (e[c] / s - (labels[b] === c ? 1 : 0)) / B;
      }
      const w0 = w.clone();
      const want = new Float32Array(C * F);
      for (let f = 0; f < F; f++) {
        const bumped = tf.tidy(() => tf.add(w0, tf.oneHot([0 * F + f], C * F).reshape([C, F]).toFloat()));
        w.assign(bumped);
        bumped.dispose();
        const l2 = logitsOf(peft, batch);
        for (let b = 0; b < B; b++) {
          const p = l2[b * C] - logits[b * C];
          for (let c = 0; c < C; c++) want[c * F + f] += dl[b * C + c] * p;
        }
      }
      w.assign(w0);
      w0.dispose();
      expect(relErr(grads.get(w)!, want)).toBeLessThan(1e-3);
      if (bias) {
        const wantB = Array.from({ length: C }, (_, c) => Array.from({ length: B }, (_, b) => dl[b * C + c]).reduce((a, x) => a + x, 0));
        expect(relErr(grads.get(bias)!, wantB)).toBeLessThan(1e-3);
      }
      // The base head is untouched: the copy is what trains.
      expect(base.params.get(`${head}.weight`)).not.toBe(w);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('a SEQ_CLS prompt adapter loads with the head keys (the head copy takes them) and without (the base head)', async () => {
    const base = fixtureModel('bert-tiny-seqcls');
    const files = adapterFiles('bert-seqcls-prefix');
    const batch = referenceBatch('bert-tiny-seqcls');
    try {
      const { tensors } = readSafetensors(files.weights);
      const withHead = new Map<string, { shape: number[]; data: Float32Array }>([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]));
      const w = base.params.get('classifier.weight')!;
      withHead.set('base_model.classifier.weight', { shape: w.shape, data: Float32Array.from(w.dataSync(), (x) => 2 * x) });
      withHead.set('base_model.classifier.bias', { shape: [2], data: new Float32Array([0.5, -0.5]) });
      const a = loadAdapter(base, files);
      const b = loadAdapter(base, { config: files.config, weights: writeSafetensors(withHead, { format: 'pt' }) });
      expect(maxAbsDiff(b.stateDict().get('base_model.classifier.bias')!.dataSync(), [0.5, -0.5])).toBe(0);
      expect(maxAbsDiff(a.stateDict().get('base_model.classifier.weight')!.dataSync(), w.dataSync())).toBe(0);
      expect(maxAbsDiff(logitsOf(a, batch), logitsOf(b, batch))).toBeGreaterThan(1e-3);
      const partial = new Map(withHead);
      partial.delete('base_model.classifier.bias');
      expect(() => loadAdapter(base, { config: files.config, weights: writeSafetensors(partial, { format: 'pt' }) })).toThrow(/part of the classification head: missing base_model\.classifier\.bias/);
      a.dispose();
      b.dispose();
    } finally {
      disposeBatch(batch);
      base.dispose();
    }
  });
});

describe('prefix tuning config', () => {
  it('writes PEFT\'s adapter_config.json (LLaMA: the kv width and kv heads) and round-trips it', () => {
    for (const c of CASES) {
      const text = adapterFiles(c.id).config;
      const parsed = parsePeftConfig(text) as PrefixTuningConfig;
      expect(formatAdapterConfigJson(peftConfigToJson(parsed, { baseModelNameOrPath: parsed.baseModelNameOrPath ?? null }))).toBe(text);
      // A fresh config: the model facts (and encoder_hidden_size None -> token_dim) come from the model.
      const base = fixtureModel(c.model);
      const peft = createPeftModel(base, prefixTuningConfig({
        taskType: parsed.taskType, numVirtualTokens: 4, prefixProjection: parsed.prefixProjection,
        encoderHiddenSize: parsed.prefixProjection ? parsed.encoderHiddenSize : null,
      }), 0);
      try {
        const json = peftConfigToJson(peft.config as PeftConfig, { baseModelNameOrPath: `models/${c.model}`, ...peft.adapterExtras() });
        expect(formatAdapterConfigJson(json)).toBe(text);
      } finally {
        peft.dispose();
        base.dispose();
      }
    }
  });

  it('refuses an adapter made for another model, and bad values', () => {
    const base = fixtureModel('llama-tiny');
    try {
      const files = adapterFiles('gpt2-prefix');
      expect(() => loadAdapter(base, files)).toThrow(/token_dim 64 differs from this model's 32/);
      const cfg = { ...JSON.parse(adapterFiles('llama-prefix').config), num_layers: 3 };
      expect(() => loadAdapter(base, { config: cfg, weights: adapterFiles('llama-prefix').weights })).toThrow(/num_layers 3 differs from this model's 2/);
    } finally {
      base.dispose();
    }
    expect(() => prefixTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, encoderHiddenSize: 0 })).toThrow(/encoder_hidden_size must be >= 1/);
    expect(() => prefixTuningConfig({ taskType: 'SEQ_2_SEQ_LM' as never, numVirtualTokens: 4 })).toThrow(/task_type "SEQ_2_SEQ_LM" is not supported for prefix tuning; use CAUSAL_LM, SEQ_CLS or TOKEN_CLS/);
    // TOKEN_CLS trains (test/prefix-tokcls.test.ts).
    expect(prefixTuningConfig({ taskType: 'TOKEN_CLS', numVirtualTokens: 4 }).taskType).toBe('TOKEN_CLS');
  });
});

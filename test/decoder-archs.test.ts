/**
 * OPT, GPT-NeoX (Pythia) and BLOOM against transformers 4.43.4 + peft 0.15.2 (test/fixtures/README.md), on the
 * cpu and wasm backends: the module tree from config.json alone, logits and loss of the base model, PEFT-saved
 * adapters (logits, loss, the gradient of every adapter tensor), PEFT's target matching (target_modules_more.json,
 * target_modules_arch.json) and KV-cached decoding equal to the full forward.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensors } from '../src/engine/io/safetensors';
import { buildModel, countParams, moduleTree, resolveArchitecture } from '../src/engine/models';
import { alibi, alibiSlopes, type BloomConfig } from '../src/engine/models/bloom';
import { createPeftModel } from '../src/engine/peft';
import { parsePeftConfig } from '../src/engine/peft/config';
import { methodOf } from '../src/engine/peft/registry';
import type { Batch } from '../src/engine/train/data';
import { causalLmLoss } from '../src/engine/train/loss';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { argmax } from '../src/engine/train/generate';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr, toTensor } from './helpers';

const TOL = 1e-4;
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

/** Classes and parameter counts from test/fixtures/README.md; adapters with their tensor and trainable counts. */
const MODELS = [
  { name: 'opt-tiny', className: 'OPTForCausalLM', seqCls: 'OPTForSequenceClassification', params: 139392 },
  { name: 'gptneox-tiny', className: 'GPTNeoXForCausalLM', seqCls: 'GPTNeoXForSequenceClassification', params: 228096 },
  { name: 'bloom-tiny', className: 'BloomForCausalLM', seqCls: 'BloomForSequenceClassification', params: 164224 },
];
const ADAPTERS = [
  { id: 'opt-lora', model: 'opt-tiny', keys: 8, trainable: 2048 },
  { id: 'gptneox-lora', model: 'gptneox-tiny', keys: 4, trainable: 2048 },
  { id: 'bloom-lora', model: 'bloom-tiny', keys: 4, trainable: 2048 },
  // Prompt rows go in before word_embeddings_layernorm; ALiBi counts them from the extended mask.
  { id: 'bloom-prompt', model: 'bloom-tiny', keys: 1, trainable: 256 },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return { config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) };
}

function disposeBatch(b: Batch) {
  for (const t of Object.values(b)) if (t instanceof tf.Tensor) t.dispose();
}

describe('module trees from config.json alone', () => {
  it.each(MODELS)('$name: named_modules() names, order, classes and shapes; parameter count', ({ name, className, seqCls, params }) => {
    const config = readJson(`models/${name}/config.json`);
    expect(moduleTree(config)).toEqual(readJson(`models/${name}/named_modules.json`));
    const r = resolveArchitecture(config);
    expect(r.className).toBe(className);
    expect(countParams(r.spec.modules(r.config, r.task), r.spec.tied(r.config, r.task))).toBe(params);
    // The SEQ_CLS class swaps the LM head for a bias-free `score` over the head's input width.
    const cls = resolveArchitecture({ ...config, architectures: [seqCls] });
    expect(cls.className).toBe(seqCls);
    const tree = cls.spec.modules(cls.config, cls.task);
    const lm = moduleTree(config).at(-1)!;
    expect(tree[0].type).toBe(seqCls);
    expect(tree.at(-1)).toEqual({ name: 'score', type: 'Linear', params: { weight: [2, lm.params.weight[1]] } });
    expect(tree.slice(1, -1)).toEqual(moduleTree(config).slice(1, -1));
  });
});

describe('PEFT target matching (peft 0.15.2)', () => {
  const ids = new Set(MODELS.map((m) => m.name));
  const cases: any[] = [...readJson('target_modules_more.json').cases, ...readJson('target_modules_arch.json').cases]
    .filter((c) => ids.has(c.model) && c.config_class === 'LoraConfig');

  it.each(cases.map((c) => [c.id, c]))('%s', async (_id, c: any) => {
    const raw = readJson(`models/${c.model}/config.json`);
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', ...c.config }));
    const ctx = { modules: moduleTree(raw), rawConfig: raw, task: 'CAUSAL_LM' as const };
    if (c.error) {
      let err: unknown;
      try {
        methodOf('LORA').resolve(ctx, cfg);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).message).toBe(c.error.message);
      return;
    }
    const rep = methodOf('LORA').resolve(ctx, cfg);
    expect(rep.matched).toEqual(c.matched_modules);
    expect(rep.modulesToSave).toEqual(c.modules_to_save);
    expect(rep.savedTargetModules).toEqual(c.saved_target_modules);
    expect({ trainable: rep.count.trainable, all: rep.count.all }).toEqual({ trainable: c.trainable_params, all: c.all_params });
    if (c.saved_keys) {
      await useNodeBackend('cpu');
      const base = fixtureModel(c.model);
      const peft = createPeftModel(base, cfg, 1);
      try {
        const files = await exportAdapter(peft, { baseModelNameOrPath: `models/${c.model}` });
        expect([...readSafetensors(files['adapter_model.safetensors']).tensors.keys()].sort()).toEqual(c.saved_keys);
      } finally {
        peft.dispose();
        base.dispose();
      }
    }
  });
});

describe.each(BACKENDS)('on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(MODELS)('$name: logits and loss equal transformers', ({ name }) => {
    const model = fixtureModel(name);
    const ref = fixtureTensors('models', name, 'reference.safetensors');
    try {
      tf.tidy(() => {
        const input = { inputIds: toTensor(ref.get('input_ids')!), attentionMask: toTensor(ref.get('attention_mask')!) };
        const logits = model.forward(input);
        expect(logits.shape).toEqual(ref.get('logits')!.shape);
        expect(maxAbsDiff(logits.dataSync(), ref.get('logits')!.data)).toBeLessThan(TOL);
        const want = ref.get('loss')!.data[0];
        expect(Math.abs(causalLmLoss(logits, toTensor(ref.get('labels')!)).dataSync()[0] - want)).toBeLessThan(TOL);
        // The fused LM-head loss (never building all logits) gives the same number.
        expect(Math.abs(model.loss(input, toTensor(ref.get('labels')!)).dataSync()[0] - want)).toBeLessThan(TOL);
      });
    } finally {
      model.dispose();
    }
  });

  it.each(ADAPTERS)('$id: the PEFT-saved adapter reproduces PEFT\'s logits, loss and gradients', async ({ id, model, keys, trainable }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id));
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }));
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
        expect(relErr(g.dataSync(), ref.data), key).toBeLessThan(1e-3);
        g.dispose();
      }
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(ADAPTERS)('$id: KV-cached decoding gives the full forward\'s logits at every new position', async ({ id, model }) => {
    const peft = loadAdapter(fixtureModel(model), adapterFiles(id));
    const prompt = [5, 17, 300, 42, 9];
    const dec = peft.base.startDecoding!(prompt, peft.hooks(false));
    const seq = [...prompt];
    const cached: Float32Array[] = [];
    try {
      for (let n = 0; n <= 6; n++) {
        const l = Float32Array.from((await dec.logits.data()) as Float32Array);
        cached.push(l);
        if (n === 6) break;
        seq.push(argmax(l));
        dec.next(seq.at(-1)!);
      }
      const full = tf.tidy(() => peft.forward({ inputIds: tf.tensor2d([seq], [1, seq.length], 'int32') }));
      const [, S, V] = full.shape as number[];
      const rows = full.dataSync() as Float32Array;
      full.dispose();
      cached.forEach((l, n) => {
        const pos = S - 1 - 6 + n;
        expect(maxAbsDiff(l, rows.subarray(pos * V, (pos + 1) * V))).toBeLessThan(TOL);
      });
    } finally {
      dec.dispose();
      peft.dispose();
      peft.base.dispose();
    }
  });
});

describe('OPT configurations beyond the fixture', () => {
  // facebook/opt-350m's shape, scaled down: post-LN (do_layer_norm_before false), no final_layer_norm, and
  // word_embed_proj_dim < hidden_size, so project_in / project_out sit around the decoder.
  const raw = {
    ...readJson('models/opt-tiny/config.json'), do_layer_norm_before: false, word_embed_proj_dim: 32, dropout: 0,
  };

  it('a 350m-style config has project_out / project_in and no final_layer_norm, as OPTDecoder builds it', () => {
    const names = moduleTree(raw).map((m) => [m.name, m.params.weight ?? null]);
    expect(names.slice(3, 7)).toEqual([
      ['model.decoder.embed_tokens', [1000, 32]],
      ['model.decoder.embed_positions', [130, 64]],
      ['model.decoder.project_out', [32, 64]],
      ['model.decoder.project_in', [64, 32]],
    ]);
    expect(names.find(([n]) => n === 'model.decoder.final_layer_norm')).toBeUndefined();
    expect(names.at(-1)).toEqual(['lm_head', [1000, 32]]);
    const pre = moduleTree({ ...raw, do_layer_norm_before: true, _remove_final_layer_norm: true });
    expect(pre.find((m) => m.name === 'model.decoder.final_layer_norm')).toBeUndefined();
  });

  it('OPTForSequenceClassification reads each row at its last non-pad token', async () => {
    await useNodeBackend('cpu');
    const model = fixtureModel('opt-tiny', 'SEQ_CLS');
    const ref = fixtureTensors('models', 'opt-tiny', 'reference.safetensors');
    try {
      tf.tidy(() => {
        const ids = toTensor(ref.get('input_ids')!);
        const mask = toTensor(ref.get('attention_mask')!);
        const pooled = model.forward({ inputIds: ids, attentionMask: mask }).arraySync() as number[][];
        // Row 1 without its two pads scores the same on its own.
        const row1 = tf.slice(ids, [1, 0], [1, 5]);
        const alone = model.forward({ inputIds: row1 }).arraySync() as number[][];
        expect(maxAbsDiff(pooled[1], alone[0])).toBeLessThan(1e-5);
      });
    } finally {
      model.dispose();
    }
  });
});

describe('KV-cached decoding of configurations beyond the fixtures equals the full forward', () => {
  const variants: [string, Record<string, unknown>][] = [
    ['OPT post-LN with project_in / project_out', { ...readJson('models/opt-tiny/config.json'), do_layer_norm_before: false, word_embed_proj_dim: 32 }],
    ['GPT-NeoX sequential residual, full rotary', { ...readJson('models/gptneox-tiny/config.json'), use_parallel_residual: false, rotary_pct: 1 }],
    ['BLOOM residual from the normalised input, 6 heads', {
      ...readJson('models/bloom-tiny/config.json'), apply_residual_connection_post_layernorm: true, n_head: 6, hidden_size: 96,
    }],
  ];
  it.each(BACKENDS.flatMap((b) => variants.map(([name, raw]) => [b, name, raw] as const)))('%s: %s', async (backend, _name, raw) => {
    await useNodeBackend(backend);
    const model = buildModel(raw, new Map(), { initMissing: 'all', seed: 3 });
    try {
      const seq = [5, 17, 300, 42, 9, 11];
      const dec = model.startDecoding!(seq.slice(0, 3));
      const cached: Float32Array[] = [Float32Array.from(dec.logits.dataSync())];
      for (const t of seq.slice(3)) {
        dec.next(t);
        cached.push(Float32Array.from(dec.logits.dataSync()));
      }
      dec.dispose();
      const full = tf.tidy(() => model.forward({ inputIds: tf.tensor2d([seq], [1, seq.length], 'int32') }));
      const rows = full.dataSync() as Float32Array;
      full.dispose();
      cached.forEach((l, n) => expect(maxAbsDiff(l, rows.subarray((2 + n) * 1000, (3 + n) * 1000))).toBeLessThan(TOL));
    } finally {
      model.dispose();
    }
  });
});

describe('BLOOM ALiBi', () => {
  it('equals transformers\' build_alibi_tensor on the reference mask (padded keys at position 0)', async () => {
    await useNodeBackend('cpu');
    const ref = fixtureTensors('models', 'bloom-tiny', 'reference.safetensors');
    const r = resolveArchitecture(readJson('models/bloom-tiny/config.json'));
    const got = tf.tidy(() => alibi(r.config as BloomConfig, toTensor(ref.get('attention_mask')!)).reshape([2, 4, 7]).dataSync());
    expect(maxAbsDiff(got, ref.get('alibi')!.data)).toBe(0);
  });

  it('slopes: 2^(-8/n (h+1)) for a power of two, the next power\'s odd slopes beyond it', () => {
    expect([...alibiSlopes(4)]).toEqual([0.25, 0.0625, 0.015625, 0.00390625]);
    // 6 heads: the 4-head slopes, then 8 heads' slopes 1 and 3 (2^-1, 2^-3).
    expect([...alibiSlopes(6)]).toEqual([0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]);
  });
});

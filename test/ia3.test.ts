/**
 * (IA)^3 against peft 0.15.2 fixtures: every saved IA3 adapter imported and applied gives PEFT's logits, loss and
 * gradients on both backends; a fresh adapter has PEFT's exact files and trainable line; target and feed-forward
 * matching follow PEFT (target_modules_more.json) with its messages; merging folds the vectors in exactly; a short
 * training run lowers the loss.
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
import type { ModuleInfo, TaskType } from '../src/engine/models/types';
import { createPeftModel } from '../src/engine/peft';
import { formatAdapterConfigJson, parsePeftConfig, peftConfigToJson } from '../src/engine/peft/config';
import { ia3 } from '../src/engine/peft/ia3';
import { ia3Config, type IA3Config } from '../src/engine/peft/ia3/config';
import { Ia3Model } from '../src/engine/peft/ia3/model';
import { isFeedforward, resolveIa3Targets } from '../src/engine/peft/ia3/targets';
import type { PeftModel } from '../src/engine/peft/model';
import { formatTrainableLine } from '../src/engine/peft/params';
import { methodOf } from '../src/engine/peft/registry';
import { TrainingSession } from '../src/engine/session';
import type { Batch, Example } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, peftDefaultsOf, referenceBatch, relErr } from './helpers';

const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

/** The IA3 fixture cases; `all` is the base model's count + the adapter (+ the head copy for SEQ_CLS). */
const CASES = [
  { id: 'gpt2-ia3', model: 'gpt2-tiny', task: 'CAUSAL_LM' as TaskType, keys: 4, trainable: 896, all: 172288 + 896 },
  { id: 'llama-ia3', model: 'llama-tiny', task: 'CAUSAL_LM' as TaskType, keys: 6, trainable: 384, all: 202048 + 384 },
  { id: 'bert-seqcls-ia3', model: 'bert-tiny-seqcls', task: 'SEQ_CLS' as TaskType, keys: 10, trainable: 770, all: 144452 },
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

function thrown(f: () => unknown): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('expected an EngineError');
}

describe.each(BACKENDS)('IA3 adapters on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: imported adapter reproduces PEFT logits, loss and gradients', async ({ id, model, keys, trainable }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id));
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      expect(peft).toBeInstanceOf(Ia3Model);
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      const refLogits = expected.get('logits')!;
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }));
      expect(logits.shape).toEqual(refLogits.shape);
      expect(maxAbsDiff(logits.dataSync(), refLogits.data)).toBeLessThan(1e-4);
      logits.dispose();

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

  it.each(CASES)('$id: a fresh adapter (PEFT defaults) exports exactly PEFT\'s files, and re-imports', async ({ id, model, task }) => {
    const files = adapterFiles(id);
    const base = fixtureModel(model);
    // target_modules / feedforward_modules unset: IA3's architecture defaults, as the fixtures were made.
    const peft = createPeftModel(base, ia3Config({ taskType: task }), 7) as Ia3Model;
    const batch = referenceBatch(model);
    try {
      // Move the vectors away from 1 so the re-import check is not trivially satisfied.
      for (const l of peft.layers.values()) l.l.assign(tf.tidy(() => tf.add(1, tf.randomNormal(l.l.shape, 0, 0.1, 'float32', 3))));
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
      expect(maxAbsDiff(logitsOf(peft, batch), logitsOf(again, batch))).toBe(0);
      again.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(CASES)('$id: merged weights equal the unmerged forward', ({ id, model }) => {
    const base = fixtureModel(model);
    const peft = loadAdapter(base, adapterFiles(id)) as Ia3Model;
    const batch = referenceBatch(model);
    try {
      const merged = peft.mergedParams();
      const a = logitsOf(peft, batch);
      const b = tf.tidy(() => base.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, { overrides: merged }).dataSync());
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
      const plain = tf.tidy(() => base.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }).dataSync());
      expect(maxAbsDiff(a, plain)).toBeGreaterThan(1e-3);
      merged.forEach((t) => t.dispose());
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });
});

describe('IA3 layer semantics', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('scales the output (bias included) of a target and the input (bias not) of a feed-forward one', () => {
    const base = fixtureModel('gpt2-tiny');
    const peft = createPeftModel(base, ia3Config({ taskType: 'CAUSAL_LM' }), 1) as Ia3Model;
    try {
      const x = tf.randomNormal([2, 3, 64], 0, 1, 'float32', 5);
      const xff = tf.randomNormal([2, 3, 256], 0, 1, 'float32', 6);
      const attn = peft.layers.get('transformer.h.0.attn.c_attn')!;
      const mlp = peft.layers.get('transformer.h.0.mlp.c_proj')!;
      expect(attn.l.shape).toEqual([192, 1]);
      expect(mlp.l.shape).toEqual([1, 256]);
      expect(Array.from(attn.l.dataSync()).every((v) => v === 1)).toBe(true); // init_ia3_weights=True: ones
      attn.l.assign(tf.randomUniform([192, 1], 0.5, 1.5, 'float32', 7));
      mlp.l.assign(tf.randomUniform([1, 256], 0.5, 1.5, 'float32', 8));
      const conv = (name: string) => (t: tf.Tensor) =>
        tf.add(tf.matMul(t.reshape([-1, t.shape[2]!]), base.params.get(`${name}.weight`)! as tf.Tensor2D).reshape([2, 3, -1]), base.params.get(`${name}.bias`)!);
      const got = attn.apply(x, conv('transformer.h.0.attn.c_attn'));
      const want = tf.mul(conv('transformer.h.0.attn.c_attn')(x), attn.l.reshape([-1]));
      expect(maxAbsDiff(got.dataSync(), want.dataSync())).toBeLessThan(1e-5);
      const gotFf = mlp.apply(xff, conv('transformer.h.0.mlp.c_proj'));
      const wantFf = conv('transformer.h.0.mlp.c_proj')(tf.mul(xff, mlp.l.reshape([-1])));
      expect(maxAbsDiff(gotFf.dataSync(), wantFf.dataSync())).toBeLessThan(1e-5);
      // Merge: c_attn's bias is scaled, mlp.c_proj's is not.
      const merged = peft.mergedParams();
      const b0 = base.params.get('transformer.h.0.mlp.c_proj.bias')!.dataSync();
      expect(Array.from(merged.get('transformer.h.0.mlp.c_proj.bias')!.dataSync())).toEqual(Array.from(b0));
      const scaled = tf.mul(base.params.get('transformer.h.0.attn.c_attn.bias')!, attn.l.reshape([-1]));
      expect(maxAbsDiff(merged.get('transformer.h.0.attn.c_attn.bias')!.dataSync(), scaled.dataSync())).toBe(0);
      merged.forEach((t) => t.dispose());
      [x, xff, got, want, gotFf, wantFf, scaled].forEach((t) => t.dispose());
    } finally {
      peft.dispose();
      base.dispose();
    }
  });

  it('init_ia3_weights=false draws N(0, 1) vectors', () => {
    const base = fixtureModel('llama-tiny');
    const peft = createPeftModel(base, ia3Config({ taskType: 'CAUSAL_LM', initIa3Weights: false }), 3) as Ia3Model;
    try {
      const v = Array.from(peft.layers.get('model.layers.0.mlp.down_proj')!.l.dataSync());
      expect(v.some((x) => x !== 1)).toBe(true);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      expect(Math.abs(mean)).toBeLessThan(0.4);
    } finally {
      peft.dispose();
      base.dispose();
    }
  });
});

describe('IA3 config, targets and the trainable line (peft 0.15.2)', () => {
  const modules = (name: string): ModuleInfo[] => readJson(`models/${name}/named_modules.json`);
  const modelInfo = (name: string) => {
    const { config } = loadModelDir(join(FIX, 'models', name));
    return config;
  };

  it.each(CASES)('$id: PEFT\'s trainable line, and adapter_config.json reproduced and round-tripped exactly', ({ id, model, task, trainable, all }) => {
    const text = readFileSync(join(FIX, 'adapters', id, 'adapter_config.json'), 'utf8');
    const rep = ia3.resolve({ modules: modules(model), rawConfig: modelInfo(model), task }, ia3Config({ taskType: task }));
    expect(rep.count).toEqual({ trainable, all });
    expect(formatTrainableLine(rep.count)).toBe(
      `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${all.toLocaleString('en-US')} || trainable%: ${((100 * trainable) / all).toFixed(4)}`,
    );
    const parsed = parsePeftConfig(text) as IA3Config;
    expect(parsed.peftType).toBe('IA3');
    expect(formatAdapterConfigJson(peftConfigToJson(parsed, { baseModelNameOrPath: parsed.baseModelNameOrPath ?? null }))).toBe(text);
    // The saved config selects the same modules as the defaults did.
    const again = ia3.resolve({ modules: modules(model), rawConfig: modelInfo(model), task }, parsed);
    expect(again.matched).toEqual(rep.matched);
    expect(again.roles).toEqual(rep.roles);
  });

  const cases: any[] = readJson('target_modules_more.json').cases.filter((c: any) => c.config_class === 'IA3Config');
  it('has both IA3 cases', () => expect(cases.map((c) => c.id)).toEqual(['gpt2-ia3-ff-not-subset', 'bert-ia3-defaults']));

  it.each(cases.map((c) => [c.id, c]))('target_modules_more.json %s', (_id, c: any) => {
    const k = c.config;
    const make = () =>
      ia3Config({
        taskType: k.task_type ?? null, targetModules: k.target_modules ?? null, excludeModules: k.exclude_modules ?? null,
        feedforwardModules: k.feedforward_modules ?? null, modulesToSave: k.modules_to_save ?? null,
      });
    if (c.error) {
      const e = thrown(make);
      expect(e.code).toBe('BAD_PEFT_CONFIG');
      expect(e.message).toBe(c.error.message);
      // The same check when the config comes from adapter_config.json.
      const json = { peft_type: 'IA3', task_type: k.task_type, target_modules: k.target_modules, feedforward_modules: k.feedforward_modules };
      expect(thrown(() => parsePeftConfig(json)).message).toBe(c.error.message);
      return;
    }
    const cfg = make();
    const m = modules(c.model);
    const raw = modelInfo(c.model);
    const res = resolveIa3Targets(m, cfg, { heads: { classifier: 'classifier' }, defaults: peftDefaultsOf(raw.model_type as string) });
    expect(res.matched).toEqual(c.matched_modules);
    expect(res.feedforward).toEqual(c.feedforward_modules);
    expect(res.modulesToSave).toEqual(c.modules_to_save);
    expect(res.savedTargetModules).toEqual(c.saved_target_modules);
    expect(res.savedFeedforwardModules).toEqual(c.saved_feedforward_modules);
    const rep = ia3.resolve({ modules: m, rawConfig: raw, task: cfg.taskType! }, cfg);
    expect(rep.count).toEqual({ trainable: c.trainable_params, all: c.all_params });
    expect(Object.keys(rep.roles ?? {}).sort()).toEqual(c.feedforward_modules);
  });

  it('matches feed-forward list entries by plain endswith and a str by re.fullmatch', () => {
    expect(isFeedforward('bert.encoder.layer.0.attention.output.dense', ['output.dense'])).toBe(true);
    // No "." boundary: "put.dense" is a suffix of "output.dense" (PEFT's str.endswith).
    expect(isFeedforward('bert.encoder.layer.0.output.dense', ['put.dense'])).toBe(true);
    expect(isFeedforward('bert.encoder.layer.0.output.dense', '.*\\.\\d\\.output\\.dense')).toBe(true);
    expect(isFeedforward('bert.encoder.layer.0.attention.output.dense', '.*\\.\\d\\.output\\.dense')).toBe(false);
    expect(isFeedforward('bert.encoder.layer.0.output.dense', 'output.dense')).toBe(false); // a str must match the full name
    const m = modules('bert-tiny-seqcls');
    const res = resolveIa3Targets(m, ia3Config({ taskType: 'SEQ_CLS', targetModules: ['key', 'dense'], feedforwardModules: 'bert\\.encoder\\.layer\\.\\d\\.output\\.dense' }), {
      heads: { classifier: 'classifier' }, defaults: peftDefaultsOf('bert'),
    });
    expect(res.feedforward).toEqual(['bert.encoder.layer.0.output.dense', 'bert.encoder.layer.1.output.dense']);
    expect(res.savedFeedforwardModules).toBe('bert\\.encoder\\.layer\\.\\d\\.output\\.dense');
    // bert.pooler.dense and attention.output.dense are targets that scale their output.
    expect(res.matched).toContain('bert.pooler.dense');
  });

  it('checks the subset only when both are lists, with PEFT\'s message', () => {
    expect(thrown(() => ia3Config({ targetModules: ['c_attn'], feedforwardModules: ['c_fc'] })).message).toBe(
      '`feedforward_modules` should be a subset of `target_modules`',
    );
    expect(ia3Config({ targetModules: '.*c_attn', feedforwardModules: ['c_fc'] }).feedforwardModules).toEqual(['c_fc']);
    expect(ia3Config({ targetModules: ['c_attn', 'c_fc'], feedforwardModules: 'c_fc' }).feedforwardModules).toBe('c_fc');
    expect(ia3Config({ targetModules: ['c_attn', 'c_fc'], feedforwardModules: ['c_fc', 'c_fc'] }).targetModules).toEqual(['c_attn', 'c_fc']);
  });

  it('needs both defaults for an architecture PEFT has none for, in PEFT\'s words', () => {
    const m = modules('gpt2-tiny');
    const heads = { outputEmbedding: 'lm_head' };
    const e = thrown(() => resolveIa3Targets(m, ia3Config({}), { heads, defaults: peftDefaultsOf('nope') }));
    expect(e.code).toBe('TARGETS_NOT_FOUND');
    expect(e.message).toBe('Please specify `target_modules` in `peft_config`');
    const f = thrown(() => resolveIa3Targets(m, ia3Config({ targetModules: ['c_attn'] }), { heads, defaults: peftDefaultsOf('nope') }));
    expect(f.message).toBe('Please specify `feedforward_modules` in `peft_config`');
    const g = thrown(() => resolveIa3Targets(m, ia3Config({ targetModules: ['nothing'] }), { heads, defaults: peftDefaultsOf('gpt2') }));
    expect(g.message).toBe("Target modules {'nothing'} not found in the base model. Please check the target modules and try again.");
  });

  it('refuses modules IA3 cannot wrap, and keeps long target lists as given (PEFT skips the rewrite for IA3)', () => {
    const m = modules('gpt2-tiny');
    const heads = { outputEmbedding: 'lm_head' };
    const e = thrown(() => resolveIa3Targets(m, ia3Config({ targetModules: ['ln_1'] }), { heads, defaults: peftDefaultsOf('gpt2') }));
    expect(e.code).toBe('BAD_PEFT_CONFIG');
    expect(e.message).toBe(
      'Target module transformer.h.0.ln_1 (LayerNorm) is not supported. Currently, only `torch.nn.Linear`, `torch.nn.Conv2d`, and `Conv1D` are supported.',
    );
    // "all-linear" on a 12-layer GPT-2 tree: 48 full names, which LoRA would condense to 3 suffixes.
    const mods: ModuleInfo[] = [{ name: '', type: 'GPT2LMHeadModel', params: {} }, { name: 'transformer', type: 'GPT2Model', params: {} }];
    for (let i = 0; i < 12; i++) {
      for (const n of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) mods.push({ name: `transformer.h.${i}.${n}`, type: 'Conv1D', params: { weight: [8, 8] } });
    }
    mods.push({ name: 'lm_head', type: 'Linear', params: { weight: [10, 8] } });
    const res = resolveIa3Targets(mods, ia3Config({ targetModules: 'all-linear' }), { heads, defaults: peftDefaultsOf('gpt2') });
    expect(res.matched.length).toBe(48);
    expect((res.savedTargetModules as string[]).length).toBe(48);
    expect(res.feedforward.length).toBe(12); // the gpt2 default feedforward_modules, mlp.c_proj
    expect(res.fanInFanOut).toBe(true);
  });

  it('is registered: peft_type IA3 parses, and its schema writes IA3Config\'s field set', () => {
    expect(methodOf('IA3')).toBe(ia3);
    const json = peftConfigToJson(ia3Config({ taskType: 'CAUSAL_LM' }), { baseModelNameOrPath: null });
    expect(Object.keys(json)).toEqual([
      'auto_mapping', 'base_model_name_or_path', 'exclude_modules', 'fan_in_fan_out', 'feedforward_modules', 'inference_mode',
      'init_ia3_weights', 'modules_to_save', 'peft_type', 'revision', 'target_modules', 'task_type',
    ]);
    expect(thrown(() => parsePeftConfig({ ...readJson('adapters/gpt2-ia3/adapter_config.json'), auto_mapping: { a: 1 } })).message).toMatch(
      /auto_mapping=.*PEFT Studio does not support yet/,
    );
  });
});

describe.each(BACKENDS)('IA3 training on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('a short TrainingSession lowers the loss with a flat tensor count', async () => {
    const data: Example[] = Array.from({ length: 32 }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const steps = backend === 'wasm' ? 20 : 8;
    const s = await TrainingSession.create({
      config, weights: tensors,
      peft: ia3Config({ taskType: 'CAUSAL_LM', targetModules: ['c_attn', 'c_fc', 'mlp.c_proj'], feedforwardModules: ['mlp.c_proj'] }),
      data: { train: data, validation: data.slice(0, 8) },
      args: { learningRate: 5e-2, batchSize: 8, maxSteps: steps, scheduler: 'constant', seed: 1 },
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
    } finally {
      s.dispose();
    }
  });
});

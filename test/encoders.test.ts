/**
 * DistilBERT and RoBERTa against transformers 4.43.4 + peft 0.15.2 (test/fixtures/README.md), on the cpu and
 * wasm backends: the module tree from config.json alone, logits and loss of the base model, RoBERTa's position
 * ids, PEFT-saved adapters (logits, loss, the gradient of every adapter tensor, the files written back), and
 * PEFT's target matching for them (target_modules_arch.json).
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
import { makeCtx } from '../src/engine/models/layers';
import { robertaPositions, type RobertaConfig } from '../src/engine/models/roberta';
import { createPeftModel } from '../src/engine/peft';
import { parsePeftConfig } from '../src/engine/peft/config';
import { methodOf } from '../src/engine/peft/registry';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, peftDefaultsOf, referenceBatch, relErr, toTensor } from './helpers';

const TOL = 1e-4;
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

/** Classes and parameter counts from test/fixtures/README.md; adapters with their tensor and trainable counts. */
const MODELS = [
  { name: 'distilbert-tiny-seqcls', className: 'DistilBertForSequenceClassification', params: 143554 },
  { name: 'roberta-tiny-seqcls', className: 'RobertaForSequenceClassification', params: 143746 },
  { name: 'bert-tiny-tokcls', className: 'BertForTokenClassification', params: 139717 },
];
const ADAPTERS = [
  // 8 LoRA tensors + pre_classifier and classifier copies (PEFT's endswith match wraps pre_classifier too).
  { id: 'distilbert-seqcls-lora', model: 'distilbert-tiny-seqcls', keys: 12, trainable: 6338 },
  // 8 LoRA tensors + the whole RobertaClassificationHead (dense, out_proj).
  { id: 'roberta-seqcls-lora', model: 'roberta-tiny-seqcls', keys: 12, trainable: 6338 },
  // TOKEN_CLS: 8 LoRA tensors + the classifier copy [5, 64] + [5].
  { id: 'bert-tokcls-lora', model: 'bert-tiny-tokcls', keys: 10, trainable: 2373 },
];

function adapterFiles(id: string) {
  const dir = join(FIX, 'adapters', id);
  return { config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) };
}

describe('module trees from config.json alone', () => {
  it.each(MODELS)('$name: named_modules() names, order, classes and shapes; parameter count', ({ name, className, params }) => {
    const config = readJson(`models/${name}/config.json`);
    expect(moduleTree(config)).toEqual(readJson(`models/${name}/named_modules.json`));
    const r = resolveArchitecture(config);
    expect(r.className).toBe(className);
    expect(countParams(r.spec.modules(r.config, r.task), r.spec.tied(r.config, r.task))).toBe(params);
  });

  it('PEFT 0.15.2 defaults: RoBERTa query,value (AdaLoRA query,key,value,dense); DistilBERT none', () => {
    expect(peftDefaultsOf('roberta')).toEqual({
      lora: ['query', 'value'], adalora: ['query', 'key', 'value', 'dense'], ia3: ['key', 'value', 'output.dense'], ia3Feedforward: ['output.dense'],
    });
    expect(peftDefaultsOf('distilbert')).toEqual({ lora: null, adalora: null, ia3: null, ia3Feedforward: null });
  });

  it('a base checkpoint without the head gets fresh pre_classifier / classifier (DistilBERT) and classifier.* (RoBERTa)', async () => {
    await useNodeBackend('cpu');
    for (const [name, fresh] of [
      ['distilbert-tiny-seqcls', ['pre_classifier', 'classifier']],
      ['roberta-tiny-seqcls', ['classifier.dense', 'classifier.out_proj']],
    ] as const) {
      const w = fixtureTensors('models', name, 'model.safetensors');
      for (const k of [...w.keys()]) if (fresh.some((f) => k.startsWith(`${f}.`))) w.delete(k);
      const m = buildModel(readJson(`models/${name}/config.json`), w);
      expect(m.report.initialised.sort()).toEqual(fresh.flatMap((f) => [`${f}.bias`, `${f}.weight`]).sort());
      m.dispose();
    }
  });
});

describe('PEFT target matching (peft 0.15.2)', () => {
  const ids = new Set(MODELS.map((m) => m.name));
  const cases: any[] = [...readJson('target_modules_more.json').cases, ...readJson('target_modules_arch.json').cases]
    .filter((c: any) => ids.has(c.model) && c.config_class === 'LoraConfig');

  it.each(cases.map((c) => [c.id, c]))('%s', async (_id, c: any) => {
    const raw = readJson(`models/${c.model}/config.json`);
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', ...c.config }));
    const task = c.config.task_type;
    const ctx = { modules: moduleTree(raw, task), rawConfig: raw, task };
    if (c.error || c.reload_error) {
      let err: unknown;
      try {
        methodOf('LORA').resolve(ctx, cfg);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EngineError);
      const msg = (err as EngineError).message;
      // PEFT's own error; where PEFT instead saves an adapter it cannot load back (reload_error), the engine
      // refuses up front and names the modules to exclude, which is the fixture's working variant.
      if (c.error) expect(msg.startsWith(c.error.message)).toBe(true);
      else expect(msg).toContain("Add ['classifier.dense'");
      if (c.id === 'distilbert-all-linear') expect(msg).toContain("add 'pre_classifier' to exclude_modules");
      if (c.id === 'bert-tokcls-all-linear') expect(msg).toContain("add 'classifier' to exclude_modules");
      return;
    }
    const rep = methodOf('LORA').resolve(ctx, cfg);
    expect(rep.matched).toEqual(c.matched_modules);
    expect([...rep.modulesToSave].sort()).toEqual(c.modules_to_save); // the fixture lists them sorted
    expect(rep.savedTargetModules).toEqual(c.saved_target_modules);
    expect({ trainable: rep.count.trainable, all: rep.count.all }).toEqual({ trainable: c.trainable_params, all: c.all_params });
    if (!c.saved_keys) return;
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
        // TOKEN_CLS: the mean cross-entropy over the 10 labelled tokens (-100 at [CLS] and the pads).
        const loss = model.loss(input, toTensor(ref.get('labels')!)).dataSync()[0];
        expect(Math.abs(loss - ref.get('loss')!.data[0])).toBeLessThan(TOL);
      });
    } finally {
      model.dispose();
    }
  });

  it('RoBERTa position ids from the ids: cumsum of the non-pad mask + padding_idx (pads at padding_idx 1)', () => {
    const ref = fixtureTensors('models', 'roberta-tiny-seqcls', 'reference.safetensors');
    const model = fixtureModel('roberta-tiny-seqcls');
    try {
      tf.tidy(() => {
        // The position table's rows 0..129 as their own index, so the picked rows read back as the position ids.
        const index = tf.tile(tf.range(0, 130).reshape([130, 1]), [1, 64]);
        const ctx = makeCtx(new Map([['roberta.embeddings.position_embeddings.weight', index]]));
        const got = robertaPositions(model.config as RobertaConfig, ctx, { inputIds: toTensor(ref.get('input_ids')!) }, 7, 0);
        expect(Array.from(tf.slice(got, [0, 0, 0], [2, 7, 1]).dataSync())).toEqual(Array.from(ref.get('position_ids')!.data, Number));
      });
    } finally {
      model.dispose();
    }
  });

  it.each(ADAPTERS)('$id: the PEFT-saved adapter reproduces PEFT\'s logits, loss and gradients, and is written back as PEFT wrote it', async ({ id, model, keys, trainable }) => {
    const base = fixtureModel(model);
    const files = adapterFiles(id);
    const peft = loadAdapter(base, files);
    const expected = fixtureTensors('adapters', id, 'expected.safetensors');
    const batch = referenceBatch(model);
    try {
      const state = peft.stateDict();
      expect(state.size).toBe(keys);
      expect([...state.values()].reduce((n, t) => n + t.size, 0)).toBe(trainable);
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }));
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
        expect(relErr(g.dataSync(), ref.data), key).toBeLessThan(1e-3);
        g.dispose();
      }
      const out = await exportAdapter(peft, { baseModelNameOrPath: `models/${model}` });
      expect(out['adapter_config.json']).toBe(files.config);
      const saved = readSafetensors(out['adapter_model.safetensors']).tensors;
      const orig = readSafetensors(files.weights).tensors;
      expect([...saved.keys()].sort()).toEqual([...orig.keys()].sort());
      for (const [k, t] of orig) expect(saved.get(k)!.shape, k).toEqual(t.shape);
    } finally {
      for (const t of Object.values(batch)) if (t instanceof tf.Tensor) t.dispose();
      peft.dispose();
      base.dispose();
    }
  });
});

describe('token classification heads from config.json alone (transformers 4.43.4 classes)', () => {
  const bert = readJson('models/bert-tiny-tokcls/config.json');
  it('BertForTokenClassification comes from architectures; the SEQ_CLS class is asked for, never built instead', () => {
    expect(resolveArchitecture(bert).task).toBe('TOKEN_CLS');
    expect(resolveArchitecture({ ...bert, architectures: ['BertForSequenceClassification'] }).task).toBe('SEQ_CLS');
  });

  it.each([
    ['gpt2-tiny', 'GPT2ForTokenClassification', 'transformer.ln_f'],
    ['distilbert-tiny-seqcls', 'DistilBertForTokenClassification', 'distilbert.transformer.layer.1.output_layer_norm'],
    ['roberta-tiny-seqcls', 'RobertaForTokenClassification', 'roberta.encoder.layer.1.output.dropout'],
  ])('%s as %s: the encoder or decoder rows, then dropout and a Linear classifier with a bias', (name, cls, last) => {
    const raw = { ...readJson(`models/${name}/config.json`), architectures: [cls], num_labels: 5 };
    const tree = moduleTree(raw);
    expect(tree[0]).toEqual({ name: '', type: cls, params: {} });
    const at = tree.findIndex((m) => m.name === last);
    expect(tree.slice(at + 1)).toEqual([
      { name: 'dropout', type: 'Dropout', params: {} },
      { name: 'classifier', type: 'Linear', params: { weight: [5, 64], bias: [5] } },
    ]);
  });

  it('architectures naming a token-classification class the engine lacks is an error naming what it builds', () => {
    const opt = readJson('models/opt-tiny/config.json');
    let err: unknown;
    try {
      resolveArchitecture({ ...opt, architectures: ['OPTForTokenClassification'] });
    } catch (e) {
      err = e;
    }
    expect((err as EngineError).code).toBe('UNSUPPORTED_ARCHITECTURE');
    expect(() => resolveArchitecture(opt, 'TOKEN_CLS')).toThrow(/do not support the TOKEN_CLS task here; choose CAUSAL_LM or SEQ_CLS/);
  });
});

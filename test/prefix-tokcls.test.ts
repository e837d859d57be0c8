/**
 * Prefix tuning for TOKEN_CLS, as PEFT 0.15.2's PeftModelForTokenClassification runs it (its own docstring example
 * is PREFIX_TUNING + TOKEN_CLS): the prefix is past keys / values, so the sequence keeps its length, the labels stay
 * as they are and the classifier scores the real tokens only. The head trains beside the prefix and is saved as
 * `base_model.classifier.*`, as for SEQ_CLS (prompt-tuning/head.ts).
 *
 * Checked against PEFT's numbers: GPT2ForTokenClassification's logits are classifier(h) over the same final hidden
 * states h that GPT2LMHeadModel multiplies by wte. A token classifier whose weight is wte (num_labels = vocab_size,
 * bias 0) under the PEFT-saved gpt2-prefix table must give PEFT's gpt2-prefix CAUSAL_LM logits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportAdapter } from '../src/engine/adapter/export';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors, type LoadedTensor } from '../src/engine/io/safetensors';
import { buildModel, moduleTree } from '../src/engine/models';
import { createPeftModel } from '../src/engine/peft';
import { parsePeftConfig } from '../src/engine/peft/config';
import { methodOf } from '../src/engine/peft/registry';
import type { Batch } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch } from './helpers';

const PREFIX_DIR = join(FIX, 'adapters', 'gpt2-prefix');

const disposeBatch = (b: Batch) => [b.inputIds, b.attentionMask, b.labels].forEach((t) => t.dispose());

/** gpt2-tiny as a GPT2ForTokenClassification whose classifier is wte (one label per vocabulary id). */
function gpt2TokClsAsLm() {
  const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
  const raw = { ...config, architectures: ['GPT2ForTokenClassification'], num_labels: config.vocab_size as number, classifier_dropout: 0 };
  const wte = tensors.get('wte.weight') ?? tensors.get('transformer.wte.weight');
  if (!wte) throw new Error('gpt2-tiny has no wte');
  const weights = new Map<string, LoadedTensor>(tensors);
  weights.set('classifier.weight', wte);
  weights.set('classifier.bias', { ...wte, shape: [wte.shape[0]], data: new Float32Array(wte.shape[0]) } as LoadedTensor);
  return buildModel(raw, weights, { task: 'TOKEN_CLS' });
}

describe('prefix tuning for TOKEN_CLS: configuration and counts', () => {
  it('is a TOKEN_CLS method; prompt tuning and P-tuning still refuse TOKEN_CLS and name prefix tuning', () => {
    expect(methodOf('PREFIX_TUNING').tasks).toContain('TOKEN_CLS');
    expect(() => parsePeftConfig(JSON.stringify({ peft_type: 'PROMPT_TUNING', task_type: 'TOKEN_CLS', num_virtual_tokens: 4 })))
      .toThrow(/cannot train TOKEN_CLS.*LoRA, DoRA, IA3, AdaLoRA or prefix tuning/);
  });

  it('counts the table and the classifier; the classifier is in modules_to_save', () => {
    const raw = JSON.parse(readFileSync(join(FIX, 'models', 'bert-tiny-tokcls', 'config.json'), 'utf8'));
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'PREFIX_TUNING', task_type: 'TOKEN_CLS', num_virtual_tokens: 4 }));
    const modules = moduleTree(raw, 'TOKEN_CLS');
    const rep = methodOf('PREFIX_TUNING').resolve({ modules, rawConfig: raw, task: 'TOKEN_CLS' }, cfg);
    expect(rep.modulesToSave).toEqual(['classifier']);
    const H = raw.hidden_size as number;
    const labels = Object.keys(raw.id2label ?? {}).length || (raw.num_labels as number);
    // table [V, 2 * L * H] + classifier Linear(H, num_labels)
    expect(rep.count.trainable).toBe(4 * 2 * (raw.num_hidden_layers as number) * H + H * labels + labels);
  });
});

describe.each(BACKENDS)('on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('the PEFT-saved gpt2-prefix table under a wte token classifier gives PEFT\'s gpt2-prefix logits', async () => {
    const base = gpt2TokClsAsLm();
    const json = { ...JSON.parse(readFileSync(join(PREFIX_DIR, 'adapter_config.json'), 'utf8')), task_type: 'TOKEN_CLS' };
    const weights = new Uint8Array(readFileSync(join(PREFIX_DIR, 'adapter_model.safetensors')));
    const peft = loadAdapter(base, { config: JSON.stringify(json), weights });
    const expected = fixtureTensors('adapters', 'gpt2-prefix', 'expected.safetensors');
    const batch = referenceBatch('gpt2-tiny');
    try {
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }));
      expect(logits.shape).toEqual(expected.get('logits')!.shape);
      expect(maxAbsDiff(logits.dataSync(), expected.get('logits')!.data)).toBeLessThan(1e-4);
      logits.dispose();
      // The file's head keys: the prefix and the classifier copy (which a file without them starts from the base head).
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/gpt2-tiny' });
      const written = readSafetensors(files['adapter_model.safetensors']).tensors;
      expect([...written.keys()].sort()).toEqual(['base_model.classifier.bias', 'base_model.classifier.weight', 'prompt_embeddings']);
      expect(JSON.parse(files['adapter_config.json'] as string)).toEqual({ ...json });
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it('BERT TOKEN_CLS: a fresh prefix trains (loss falls; table and classifier get gradients) and its file reloads to the same logits', async () => {
    const base = fixtureModel('bert-tiny-tokcls', 'TOKEN_CLS');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'PREFIX_TUNING', task_type: 'TOKEN_CLS', num_virtual_tokens: 3 }));
    const peft = createPeftModel(base, cfg, 11);
    const ids = tf.tensor2d([[2, 15, 27, 9, 40, 3], [2, 33, 8, 3, 0, 0]], [2, 6], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], [2, 6], 'int32');
    const labels = tf.tensor2d([[-100, 1, 0, 1, 0, -100], [-100, 1, 1, -100, -100, -100]], [2, 6], 'int32');
    const batch = { inputIds: ids, attentionMask: mask, labels } as Batch;
    let reloaded: ReturnType<typeof loadAdapter> | null = null;
    try {
      const trainable = peftTrainable(peft);
      const first = await lossAndGrads(trainable, batch, false);
      expect(first.grads.size).toBe(3); // prompt table, classifier weight, classifier bias
      for (const g of first.grads.values()) {
        expect(Math.max(...Array.from(g.dataSync(), Math.abs))).toBeGreaterThan(0);
        g.dispose();
      }
      const opt = tf.train.adam(5e-2);
      let last = first.loss;
      for (let i = 0; i < 15; i++) {
        const r = await lossAndGrads(trainable, batch, false);
        opt.applyGradients([...r.grads].map(([v, g]) => ({ name: v.name, tensor: g })));
        for (const g of r.grads.values()) g.dispose();
        last = r.loss;
      }
      opt.dispose();
      expect(last).toBeLessThan(first.loss * 0.5);
      const own = tf.tidy(() => peft.forward({ inputIds: ids, attentionMask: mask }));
      expect(own.shape).toEqual([2, 6, base.config.numLabels]);
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/bert-tiny-tokcls' });
      expect(JSON.parse(files['adapter_config.json'] as string)).toMatchObject({ peft_type: 'PREFIX_TUNING', task_type: 'TOKEN_CLS', num_virtual_tokens: 3 });
      reloaded = loadAdapter(fixtureModel('bert-tiny-tokcls', 'TOKEN_CLS'), { config: files['adapter_config.json'] as string, weights: files['adapter_model.safetensors'] as Uint8Array });
      const back = tf.tidy(() => reloaded!.forward({ inputIds: ids, attentionMask: mask }));
      expect(maxAbsDiff(back.dataSync(), own.dataSync())).toBeLessThan(1e-5);
      own.dispose();
      back.dispose();
    } finally {
      disposeBatch(batch);
      peft.dispose();
      reloaded?.dispose();
      reloaded?.base.dispose();
      base.dispose();
    }
  });
});

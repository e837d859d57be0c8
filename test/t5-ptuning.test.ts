/**
 * P-tuning on T5 (SEQ_2_SEQ_LM), as PEFT 0.15.2 runs it: PromptEncoder has num_virtual_tokens *
 * num_transformer_submodules rows (2P), encodes all of them, saves all of them as `prompt_embeddings` [2P, D],
 * and PeftModelForSeq2SeqLM prepends only the first P to the encoder input.
 *
 * The fixtures have no P-tuning adapter for T5, but a PEFT P_TUNING adapter loaded for inference is its saved table
 * used exactly as prompt tuning's (PromptEncoder in inference mode is the bare embedding). So PEFT's own numbers for
 * t5-prompt (README "Prompt tuning": logits, loss and the table's gradient) are also PEFT's numbers for a P_TUNING
 * file holding that table; the trained encoder is then checked to save a table that reproduces its own forward.
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
import { PTuningModel } from '../src/engine/peft/p-tuning/model';
import { methodOf } from '../src/engine/peft/registry';
import type { Batch } from '../src/engine/train/data';
import { lossAndGrads, peftTrainable } from '../src/engine/train/step';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, referenceBatch, relErr } from './helpers';

const TOL = 1e-4;
const PROMPT_DIR = join(FIX, 'adapters', 't5-prompt');

/** t5-prompt's fields, as the P_TUNING config PEFT 0.15.2 writes for them (encoder_hidden_size = token_dim). */
const P_TUNING_JSON = {
  auto_mapping: null, base_model_name_or_path: 'models/t5-tiny', encoder_dropout: 0, encoder_hidden_size: 64, encoder_num_layers: 2,
  encoder_reparameterization_type: 'MLP', inference_mode: true, num_attention_heads: 4, num_layers: 2, num_transformer_submodules: 2,
  num_virtual_tokens: 4, peft_type: 'P_TUNING', revision: null, task_type: 'SEQ_2_SEQ_LM', token_dim: 64,
};

function disposeBatch(b: Batch) {
  for (const t of Object.values(b)) if (t instanceof tf.Tensor) t.dispose();
}

describe('P-tuning on T5: configuration and counts', () => {
  it('resolves with 2P encoder rows counted, as get_nb_trainable_parameters counts them while training', () => {
    const raw = JSON.parse(readFileSync(join(FIX, 'models', 't5-tiny', 'config.json'), 'utf8'));
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'P_TUNING', task_type: 'SEQ_2_SEQ_LM', num_virtual_tokens: 4 }));
    const rep = methodOf('P_TUNING').resolve({ modules: moduleTree(raw), rawConfig: raw, task: 'SEQ_2_SEQ_LM' }, cfg);
    // embedding [8, 64] + Linear(64, 64) x 3 (MLP, encoder_hidden_size = token_dim).
    expect(rep.count.trainable).toBe(8 * 64 + 3 * (64 * 64 + 64));
    expect(methodOf('P_TUNING').tasks).toContain('SEQ_2_SEQ_LM');
  });

  it('num_transformer_submodules other than 2 is refused for SEQ_2_SEQ_LM', () => {
    expect(() => parsePeftConfig(JSON.stringify({ peft_type: 'P_TUNING', task_type: 'SEQ_2_SEQ_LM', num_virtual_tokens: 4, num_transformer_submodules: 1 })))
      .toThrow(/num_transformer_submodules must be 2 for SEQ_2_SEQ_LM/);
  });
});

describe.each(BACKENDS)('on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('a P_TUNING file holding t5-prompt\'s table reproduces PEFT\'s t5-prompt logits, loss and table gradient', async () => {
    const base = fixtureModel('t5-tiny');
    const weights = new Uint8Array(readFileSync(join(PROMPT_DIR, 'adapter_model.safetensors')));
    const peft = loadAdapter(base, { config: JSON.stringify(P_TUNING_JSON), weights });
    const expected = fixtureTensors('adapters', 't5-prompt', 'expected.safetensors');
    const batch = referenceBatch('t5-tiny');
    try {
      expect(peft).toBeInstanceOf(PTuningModel);
      expect((peft as PTuningModel).mode).toBe('table');
      const logits = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }));
      expect(logits.shape).toEqual(expected.get('logits')!.shape);
      expect(maxAbsDiff(logits.dataSync(), expected.get('logits')!.data)).toBeLessThan(TOL);
      logits.dispose();
      const { loss, grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      expect(Math.abs(loss - expected.get('loss')!.data[0])).toBeLessThan(TOL);
      expect(grads.size).toBe(1);
      const [g] = [...grads.values()];
      expect(g.shape).toEqual([8, 64]);
      expect(relErr(g.dataSync(), expected.get('prompt_embeddings')!.data)).toBeLessThan(1e-3);
      g.dispose();
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/t5-tiny' });
      expect(JSON.parse(files['adapter_config.json'] as string)).toEqual(P_TUNING_JSON);
      const written = readSafetensors(files['adapter_model.safetensors']).tensors;
      expect([...written.keys()]).toEqual(['prompt_embeddings']);
      expect(written.get('prompt_embeddings')!.shape).toEqual([8, 64]);
    } finally {
      disposeBatch(batch);
      peft.dispose();
      base.dispose();
    }
  });

  it.each(['MLP', 'LSTM'])('a fresh %s encoder: saves 2P rows whose reload gives its own forward; the decoder rows reach the loss only through an LSTM', async (kind) => {
    const base = fixtureModel('t5-tiny');
    const cfg = parsePeftConfig(JSON.stringify({ peft_type: 'P_TUNING', task_type: 'SEQ_2_SEQ_LM', num_virtual_tokens: 3, encoder_reparameterization_type: kind, encoder_hidden_size: 16 }));
    const peft = createPeftModel(base, cfg, 7) as PTuningModel;
    const batch = referenceBatch('t5-tiny');
    let reloaded: ReturnType<typeof loadAdapter> | null = null;
    try {
      expect(peft.mode).toBe('encoder');
      const { grads } = await lossAndGrads(peftTrainable(peft), batch, false);
      const emb = [...peft.encoderState()].find(([k]) => k.endsWith('embedding.weight'))![1];
      expect(emb.shape).toEqual([6, 64]);
      const gEmb = grads.get(emb as tf.Variable)!.dataSync();
      const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));
      expect(maxAbs(gEmb.slice(0, 3 * 64))).toBeGreaterThan(0);
      // MLP: rows are encoded one by one, so the decoder's rows 3-5 get no gradient; the bidirectional LSTM reads them.
      if (kind === 'MLP') expect(maxAbs(gEmb.slice(3 * 64))).toBe(0);
      else expect(maxAbs(gEmb.slice(3 * 64))).toBeGreaterThan(0);
      for (const g of grads.values()) g.dispose();

      const own = tf.tidy(() => peft.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }));
      const files = await exportAdapter(peft, { baseModelNameOrPath: 'models/t5-tiny' });
      const json = JSON.parse(files['adapter_config.json'] as string);
      expect(json).toMatchObject({ peft_type: 'P_TUNING', task_type: 'SEQ_2_SEQ_LM', num_transformer_submodules: 2, num_virtual_tokens: 3, token_dim: 64, encoder_hidden_size: 16 });
      const written = readSafetensors(files['adapter_model.safetensors']).tensors;
      expect(written.get('prompt_embeddings')!.shape).toEqual([6, 64]);
      reloaded = loadAdapter(fixtureModel('t5-tiny'), { config: files['adapter_config.json'] as string, weights: files['adapter_model.safetensors'] as Uint8Array });
      const back = tf.tidy(() => reloaded!.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }));
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

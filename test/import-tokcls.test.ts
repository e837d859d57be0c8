/** A PEFT-saved TOKEN_CLS adapter imported in the studio: the head sized from the adapter, PEFT's eval loss. */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { uploadWeights } from '../src/engine/models';
import type { Example } from '../src/engine/train/data';
import { ImportedAdapter } from '../src/worker/adapter-import';
import { readFileSync } from 'node:fs';
import { FIX, fixtureTensors } from './helpers';

describe('TOKEN_CLS adapter import', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('bert-tokcls-lora: the 5-tag classifier from the adapter, eval loss equals PEFT\'s', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'bert-tiny-tokcls'));
    const c: Record<string, unknown> = { ...config, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 };
    const weights = uploadWeights(tensors);
    const dir = join(FIX, 'adapters', 'bert-tokcls-lora');
    const labels = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
    const a = ImportedAdapter.create({ config: c, weights, tokenizer: null, task: 'TOKEN_CLS', labels }, {
      name: 'tok', config: new Uint8Array(readFileSync(join(dir, 'adapter_config.json'))), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
      configName: 'adapter_config.json', weightsName: 'adapter_model.safetensors',
    });
    try {
      expect(a.info.task).toBe('TOKEN_CLS');
      const ref = fixtureTensors('models', 'bert-tiny-tokcls', 'reference.safetensors');
      const [B, T] = ref.get('input_ids')!.shape;
      const rows: Example[] = [];
      for (let b = 0; b < B; b++) {
        const keep = Array.from({ length: T }, (_, t) => b * T + t).filter((i) => Number(ref.get('attention_mask')!.data[i]) === 1);
        rows.push({ inputIds: keep.map((i) => Number(ref.get('input_ids')!.data[i])), labels: keep.map((i) => Number(ref.get('labels')!.data[i])) });
      }
      const r = await a.evaluate(rows, { batchSize: 2, maxLength: 64 });
      const peftLoss = Number(fixtureTensors('adapters', 'bert-tokcls-lora', 'expected.safetensors').get('loss')!.data[0]);
      expect(r.withAdapter.evalLoss).toBeCloseTo(peftLoss, 4);
    } finally {
      a.dispose?.();
      weights.forEach((t) => t.dispose());
    }
  });
});

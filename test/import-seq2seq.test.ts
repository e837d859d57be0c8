/**
 * A PEFT-saved SEQ_2_SEQ_LM adapter (test/fixtures/adapters/t5-lora, peft 0.15.2 on t5-tiny) imported in the studio:
 * its eval loss on the reference batch equals PEFT's, the evaluation carries the generation scores, and the
 * playground's seq2seq generation with the adapter off is the base model's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { buildModel, uploadWeights } from '../src/engine/models';
import type { TokenizerLike } from '../src/engine/session';
import type { Example } from '../src/engine/train/data';
import { generateSeq2Seq } from '../src/engine/train/seq2seq-generate';
import { ImportedAdapter } from '../src/worker/adapter-import';
import { FIX, fixtureTensors } from './helpers';

/** Characters a..z as ids 3..28 with </s> (1) appended. */
const tok: TokenizerLike = {
  encode: (s) => [...s.replace(/[^a-z]/g, '')].map((c) => c.charCodeAt(0) - 94).concat(1),
  decode: (ids) => ids.map((i) => (i > 2 && i < 29 ? String.fromCharCode(i + 94) : `<${i}>`)).join(''),
  eosTokenId: 1,
  padTokenId: 0,
};

describe('SEQ_2_SEQ_LM adapter import', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('t5-lora: eval loss equals PEFT\'s on the reference batch; scores from generation; adapter off = base model', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 't5-tiny'));
    const weights = uploadWeights(tensors);
    const dir = join(FIX, 'adapters', 't5-lora');
    const a = ImportedAdapter.create({ config: { ...config, dropout_rate: 0 }, weights, tokenizer: tok, task: 'CAUSAL_LM', labels: [] }, {
      name: 't5-lora', config: new Uint8Array(readFileSync(join(dir, 'adapter_config.json'))), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
      configName: 'adapter_config.json', weightsName: 'adapter_model.safetensors',
    });
    try {
      // The adapter's task_type wins over the project's.
      expect(a.info.task).toBe('SEQ_2_SEQ_LM');
      const ref = fixtureTensors('models', 't5-tiny', 'reference.safetensors');
      const [B, T] = ref.get('input_ids')!.shape;
      const L = ref.get('labels')!.shape[1];
      const rows: Example[] = Array.from({ length: B }, (_, b) => ({
        // Right-padded sources: the rows are their unmasked tokens (the studio pads them again).
        inputIds: Array.from({ length: T }, (_, t) => b * T + t).filter((i) => Number(ref.get('attention_mask')!.data[i]) === 1).map((i) => Number(ref.get('input_ids')!.data[i])),
        labels: Array.from({ length: L }, (_, t) => Number(ref.get('labels')!.data[b * L + t])),
      }));
      const r = await a.evaluate(rows, { batchSize: B, maxLength: 64 });
      const peftLoss = Number(fixtureTensors('adapters', 't5-lora', 'expected.safetensors').get('loss')!.data[0]);
      expect(r.withAdapter.evalLoss).toBeCloseTo(peftLoss, 4);
      // Generation scored on the first row only: the loss still covers the batch.
      const one = await a.evaluate(rows, { batchSize: B, maxLength: 64, generationEvalRows: 1 });
      expect(one.withAdapter.evalLoss).toBeCloseTo(peftLoss, 4);
      expect(one.withAdapter.exactMatch === 0 || one.withAdapter.exactMatch === 1).toBe(true);
      for (const m of [r.withAdapter, r.withoutAdapter]) {
        expect(m.exactMatch).toBeGreaterThanOrEqual(0);
        expect(m.chrf).toBeGreaterThanOrEqual(0);
        expect(m.rougeL).toBeGreaterThanOrEqual(0);
      }
      const base = buildModel({ ...config, dropout_rate: 0 }, tensors, { task: 'SEQ_2_SEQ_LM' });
      try {
        const expected = tok.decode(await generateSeq2Seq(base, tok.encode('hello'), {}, { maxNewTokens: 5 }));
        expect(await a.generateSeq2Seq('hello', { maxNewTokens: 5, adapter: false })).toBe(expected);
      } finally {
        base.dispose();
      }
      expect((await a.generateSeq2Seq('hello', { maxNewTokens: 5 })).length).toBeGreaterThan(0);
    } finally {
      a.dispose();
      weights.forEach((t) => t.dispose());
    }
  });
});

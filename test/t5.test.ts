/**
 * T5ForConditionalGeneration against transformers 4.43.4 (test/fixtures/README.md, `t5-tiny`), on the cpu and wasm
 * backends: the module tree from config.json alone (v1.1 gated-gelu as in the fixture, and v1.0's ReLU / tied
 * head), the relative-position bucket tables, logits with the decoder inputs given or derived from labels, the
 * loss, and T5's _shift_right.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { countParams, moduleTree, resolveArchitecture } from '../src/engine/models';
import { bucketTable, relativePositionBucket, shiftRight, type T5Config } from '../src/engine/models/t5';
import { loadAdapter } from '../src/engine/adapter/import';
import { generateSeq2Seq, generationHooks } from '../src/engine/train/seq2seq-generate';
import { BACKENDS, FIX, fixtureModel, fixtureTensors, maxAbsDiff, toTensor } from './helpers';

const TOL = 1e-4;
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));
const CONFIG = readJson('models/t5-tiny/config.json');

describe('T5 from config.json alone', () => {
  it('named_modules() names, order, classes and shapes; 325440 parameters (README table)', () => {
    expect(moduleTree(CONFIG)).toEqual(readJson('models/t5-tiny/named_modules.json'));
    const r = resolveArchitecture(CONFIG);
    expect(r.task).toBe('SEQ_2_SEQ_LM');
    expect(r.className).toBe('T5ForConditionalGeneration');
    expect(countParams(r.spec.modules(r.config, r.task), r.spec.tied(r.config, r.task))).toBe(325440);
    expect(r.spec.peftDefaults(r.config)).toEqual({ lora: ['q', 'v'], adalora: ['q', 'v'], ia3: ['k', 'v', 'wo'], ia3Feedforward: ['wo'] });
  });

  it('T5 v1.0 (feed_forward_proj relu, tied head): DenseReluDense wi / wo, lm_head tied to shared', () => {
    const raw = { ...CONFIG, feed_forward_proj: 'relu', tie_word_embeddings: undefined, is_gated_act: false, dense_act_fn: 'relu' };
    const r = resolveArchitecture(raw);
    const tree = r.spec.modules(r.config, r.task);
    const ff = tree.filter((m) => m.name.startsWith('encoder.block.0.layer.1.DenseReluDense'));
    expect(ff).toEqual([
      { name: 'encoder.block.0.layer.1.DenseReluDense', type: 'T5DenseActDense', params: {} },
      { name: 'encoder.block.0.layer.1.DenseReluDense.wi', type: 'Linear', params: { weight: [128, 64] } },
      { name: 'encoder.block.0.layer.1.DenseReluDense.wo', type: 'Linear', params: { weight: [64, 128] } },
      { name: 'encoder.block.0.layer.1.DenseReluDense.dropout', type: 'Dropout', params: {} },
      { name: 'encoder.block.0.layer.1.DenseReluDense.act', type: 'ReLU', params: {} },
    ]);
    expect(r.spec.tied(r.config, r.task)).toEqual({ 'lm_head.weight': 'shared.weight' });
    // gated: 3 FF matrices of 8192 per block, plain: 2; the tied head is counted once.
    expect(countParams(tree, r.spec.tied(r.config, r.task))).toBe(325440 - 64000 - 4 * 8192);
  });

  it('a bad feed_forward_proj is a BAD_CONFIG error naming the values that work', () => {
    expect(() => resolveArchitecture({ ...CONFIG, feed_forward_proj: 'gelu-gated' })).toThrow(/feed_forward_proj "gelu-gated".*"gated-gelu"/);
    expect(() => resolveArchitecture({ ...CONFIG, architectures: ['T5ForConditionalGeneration'] }, 'CAUSAL_LM')).toThrow(/SEQ_2_SEQ_LM/);
  });

  it('relative-position buckets equal the reference tables (encoder bidirectional 7x7, decoder causal 5x5)', () => {
    const ref = fixtureTensors('models', 't5-tiny', 'reference.safetensors');
    const c = resolveArchitecture(CONFIG).config as T5Config;
    expect([...bucketTable(c, 7, 7, true)]).toEqual([...ref.get('encoder_position_bucket')!.data].map(Number));
    expect([...bucketTable(c, 5, 5, false)]).toEqual([...ref.get('decoder_position_bucket')!.data].map(Number));
    // By hand from the formula (README, "T5"): bidirectional n = 4 per direction, max_exact 2;
    // |rel| = 2 -> 2 + int(log(1) / log(8) * 2) = 2; |rel| = 15 -> 2 + int(log(7.5) / log(8) * 2) = 2 + int(1.938) = 3;
    // rel > 0 adds 4. Causal: r = 3 -> 3; r = 4 -> 4 + int(0) = 4; r = 15 -> 4 + int(log(3.75) / log(4) * 4) = 4 + 3 = 7.
    expect([-2, -15, 2, 15, 1, 0].map((r) => relativePositionBucket(r, true, 8, 16))).toEqual([2, 3, 6, 7, 5, 0]);
    expect([-3, -4, -15, -100, 3].map((r) => relativePositionBucket(r, false, 8, 16))).toEqual([3, 4, 7, 7, 0]);
  });
});

describe.each(BACKENDS)('on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it('_shift_right of the reference labels is the reference decoder_input_ids', () => {
    const ref = fixtureTensors('models', 't5-tiny', 'reference.safetensors');
    const got = tf.tidy(() => shiftRight(toTensor(ref.get('labels')!), 0, 0).dataSync());
    expect([...got]).toEqual([...ref.get('decoder_input_ids')!.data].map(Number));
  });

  it('logits (decoder inputs given, or derived from labels) and the loss equal transformers', () => {
    const model = fixtureModel('t5-tiny');
    const ref = fixtureTensors('models', 't5-tiny', 'reference.safetensors');
    try {
      tf.tidy(() => {
        const input = { inputIds: toTensor(ref.get('input_ids')!), attentionMask: toTensor(ref.get('attention_mask')!) };
        const labels = toTensor(ref.get('labels')!);
        const want = ref.get('logits')!;
        const a = model.forward({ ...input, decoderInputIds: toTensor(ref.get('decoder_input_ids')!) });
        expect(a.shape).toEqual(want.shape);
        expect(maxAbsDiff(a.dataSync(), want.data)).toBeLessThan(TOL);
        const b = model.forward({ ...input, labels });
        expect(maxAbsDiff(b.dataSync(), want.data)).toBeLessThan(TOL);
        expect(Math.abs(model.loss(input, labels).dataSync()[0] - ref.get('loss')!.data[0])).toBeLessThan(TOL);
        const ev = model.evaluate(input, labels);
        expect(Math.abs(ev.loss.dataSync()[0] - ref.get('loss')!.data[0])).toBeLessThan(TOL);
        expect(ev.preds.shape).toEqual([10]);
      });
    } finally {
      model.dispose();
    }
  });

  it.each(['t5-tiny', 't5-lora', 't5-prompt'])('%s: cached decoding (encoder once, cross K/V once) gives the full forward\'s logits at every step', async (id) => {
    const base = fixtureModel('t5-tiny');
    const dir = join(FIX, 'adapters', id);
    const peft = id === 't5-tiny' ? null : loadAdapter(base, {
      config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
    });
    const hooks = peft ? generationHooks(peft) : {};
    const source = [12, 400, 7, 999, 31, 1];
    const target = [0, 55, 123, 9, 1, 700, 42]; // decoder_start_token_id, then the tokens fed one by one
    const dec = base.startSeq2SeqDecoding!(source, hooks);
    try {
      const full = tf.tidy(() => base.forward({ inputIds: tf.tensor2d([source], [1, source.length], 'int32'), decoderInputIds: tf.tensor2d([target], [1, target.length], 'int32') }, hooks));
      const want = (await full.data()) as Float32Array;
      full.dispose();
      const V = 1000;
      for (let n = 0; n < target.length; n++) {
        expect(dec.length).toBe(n + 1);
        const got = (await dec.logits.data()) as Float32Array;
        expect(maxAbsDiff(got, want.subarray(n * V, (n + 1) * V)), `step ${n}`).toBeLessThan(TOL);
        if (n + 1 < target.length) dec.next(target[n + 1]);
      }
    } finally {
      dec.dispose();
      peft?.dispose();
      base.dispose();
    }
  });

  it('greedy generation picks each step\'s argmax of the full forward and stops at max_new_tokens or EOS', async () => {
    const model = fixtureModel('t5-tiny');
    try {
      const source = [12, 400, 7, 999, 31, 1];
      const before = tf.memory().numTensors;
      const out = await generateSeq2Seq(model, source, {}, { maxNewTokens: 5 });
      expect(tf.memory().numTensors).toBe(before);
      expect(out.length).toBe(5);
      // Each token is the argmax of the uncached forward over the tokens before it.
      const seq = [0];
      for (const t of out) {
        const l = tf.tidy(() => model.forward({ inputIds: tf.tensor2d([source], [1, 6], 'int32'), decoderInputIds: tf.tensor2d([seq], [1, seq.length], 'int32') }));
        const last = tf.tidy(() => tf.argMax(l.slice([0, seq.length - 1, 0], [1, 1, -1]).reshape([-1])).dataSync()[0]);
        l.dispose();
        expect(t).toBe(last);
        seq.push(t);
      }
      // Declaring the first generated token EOS stops before it.
      expect(await generateSeq2Seq(model, source, {}, { maxNewTokens: 5, eosTokenId: out[0] })).toEqual([]);
    } finally {
      model.dispose();
    }
  });
});

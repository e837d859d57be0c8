/**
 * The studio's SEQ_2_SEQ_LM playground path (TrainingSession.generateSeq2Seq, the engine's seq2seqText) on t5-tiny:
 * with the adapter off it is the base model's greedy generation exactly (generateSeq2Seq with no hooks), the text
 * streams as growing prefixes ending in the result, a stop ends it early, and a prompt method's generation leaves
 * no tensor behind. A character tokenizer stands in for T5's (t5-tiny ships none).
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { buildModel } from '../src/engine/models';
import { adaLoraConfig } from '../src/engine/peft/adalora/config';
import { ia3Config } from '../src/engine/peft/ia3/config';
import { loraConfig } from '../src/engine/peft/lora/config';
import { pTuningConfig } from '../src/engine/peft/p-tuning/config';
import { promptTuningConfig } from '../src/engine/peft/prompt-tuning/config';
import { TrainingSession, type TokenizerLike } from '../src/engine/session';
import { generateSeq2Seq } from '../src/engine/train/seq2seq-generate';
import { FIX } from './helpers';

const MODEL = join(FIX, 'models', 't5-tiny');

/** a..z -> 3..28, </s> (1) appended; decode drops pad / </s>. */
const tok: TokenizerLike = {
  encode: (s) => [...s.replace(/[^a-z]/g, '')].map((c) => c.charCodeAt(0) - 94).concat(1),
  decode: (ids) => ids.filter((i) => i > 2 && i < 29).map((i) => String.fromCharCode(i + 94)).join(''),
  eosTokenId: 1,
  padTokenId: 0,
};

const WORDS = ['cat', 'dog', 'bird', 'fish', 'cow', 'pig', 'hen', 'fox'];
const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ text: WORDS[i % WORDS.length], target: [...WORDS[i % WORDS.length]].reverse().join('') }));

beforeAll(async () => {
  await useNodeBackend('cpu');
});

async function session(peft: unknown, more: Record<string, unknown> = {}) {
  const { config, tensors } = loadModelDir(MODEL);
  return TrainingSession.create({
    config, weights: tensors, tokenizer: tok, task: 'SEQ_2_SEQ_LM', peft: peft as never,
    data: { train: rows(16), validation: rows(4) }, args: { maxSteps: 4, batchSize: 4, learningRate: 3e-2, maxLength: 16, ...more },
  });
}

describe('SEQ_2_SEQ_LM playground generation', () => {
  it('adapter off = the base model greedy; streaming prefixes end in the result; a stop ends after one token', async () => {
    const s = await session(loraConfig({ taskType: 'SEQ_2_SEQ_LM', r: 4, loraAlpha: 8, targetModules: ['q', 'v'] }));
    try {
      for (let i = 0; i < 4; i++) await s.step();
      const { config, tensors } = loadModelDir(MODEL);
      const base = buildModel(config, tensors, { task: 'SEQ_2_SEQ_LM' });
      let expected: string;
      try {
        expected = tok.decode(await generateSeq2Seq(base, tok.encode('bird'), {}, { maxNewTokens: 6 }));
      } finally {
        base.dispose();
      }
      const streamed: string[] = [];
      const off = await s.generateSeq2Seq('bird', { maxNewTokens: 6, adapter: false, onText: (t) => void streamed.push(t) });
      expect(off).toBe(expected);
      expect(streamed.length).toBeGreaterThan(0);
      expect(streamed[streamed.length - 1]).toBe(off);
      streamed.forEach((t, i) => expect(off.startsWith(t) && (i === 0 || t.length >= streamed[i - 1].length)).toBe(true));
      // The adapter is on by default, and switched back on after an adapter-off generation.
      expect(s.peft.enabled).toBe(true);
      let n = 0;
      const on = await s.generateSeq2Seq('bird', { maxNewTokens: 6, onText: () => void n++, shouldStop: () => true });
      expect(n).toBe(1);
      expect(on.length).toBeLessThanOrEqual(1);
      const m = await s.evaluate();
      expect(m.exactMatch).toBeGreaterThanOrEqual(0);
      expect(m.chrf).toBeGreaterThanOrEqual(0);
    } finally {
      s.dispose();
    }
  }, 60_000);

  it('generationEvalRows: generation is scored on the first N validation rows, the loss on all', async () => {
    const s = await session(loraConfig({ taskType: 'SEQ_2_SEQ_LM', r: 4, loraAlpha: 8, targetModules: ['q', 'v'] }));
    try {
      const totals: Record<string, number> = {};
      const all = await s.evaluate(undefined, (p) => void (totals[p.phase] = p.total));
      expect(totals.generation).toBe(4);
      (s.args as { generationEvalRows?: number }).generationEvalRows = 2;
      const few = await s.evaluate(undefined, (p) => void (totals[p.phase] = p.total));
      expect(totals.generation).toBe(2);
      expect(few.evalLoss).toBe(all.evalLoss);
      expect(few.rows).toBe(4);
    } finally {
      s.dispose();
    }
  }, 60_000);

  it.each([
    ['prompt tuning', () => promptTuningConfig({ taskType: 'SEQ_2_SEQ_LM', numVirtualTokens: 4 })],
    ['P-tuning', () => pTuningConfig({ taskType: 'SEQ_2_SEQ_LM', numVirtualTokens: 4, encoderReparameterizationType: 'LSTM' })],
  ])('%s: generation with the virtual tokens frees what it made', async (_name, cfg) => {
    const s = await session(cfg());
    try {
      await s.step();
      // Warm both paths first: the model caches what depends only on the lengths (position buckets, causal masks).
      await s.generateSeq2Seq('cow', { maxNewTokens: 3 });
      await s.generateSeq2Seq('cow', { maxNewTokens: 3, adapter: false });
      const before = tf.memory().numTensors;
      await s.generateSeq2Seq('cow', { maxNewTokens: 3 });
      const mid = tf.memory().numTensors;
      await s.generateSeq2Seq('cow', { maxNewTokens: 3, adapter: false });
      expect([mid, tf.memory().numTensors]).toEqual([before, before]);
    } finally {
      s.dispose();
    }
  }, 60_000);

  it.each([
    ['IA3', () => ia3Config({ taskType: 'SEQ_2_SEQ_LM', targetModules: ['k', 'v', 'wo'], feedforwardModules: ['wo'] })],
    ['ADALORA', () => adaLoraConfig({ taskType: 'SEQ_2_SEQ_LM', initR: 4, targetR: 2, totalStep: 4, targetModules: ['q', 'v'] })],
    ['PROMPT_TUNING', () => promptTuningConfig({ taskType: 'SEQ_2_SEQ_LM', numVirtualTokens: 4 })],
    ['P_TUNING', () => pTuningConfig({ taskType: 'SEQ_2_SEQ_LM', numVirtualTokens: 4 })],
  ])('%s on T5: steps, an evaluation with generation scores, a generation and an adapter with task_type SEQ_2_SEQ_LM', async (name, cfg) => {
    const s = await session(cfg());
    try {
      for (let i = 0; i < 2; i++) expect(Number.isFinite((await s.step()).loss)).toBe(true);
      const m = await s.evaluate();
      expect(Number.isFinite(m.evalLoss)).toBe(true);
      expect(m.chrf).toBeGreaterThanOrEqual(0);
      expect(typeof (await s.generateSeq2Seq('pig', { maxNewTokens: 3 }))).toBe('string');
      const files = await s.exportAdapter();
      expect(JSON.parse(files['adapter_config.json'] as string)).toMatchObject({ peft_type: name, task_type: 'SEQ_2_SEQ_LM' });
    } finally {
      s.dispose();
    }
  }, 60_000);


  it('the best checkpoint by eval_chrf (higher is better), as metric_for_best_model="chrf" picks it', async () => {
    const s = await session(loraConfig({ taskType: 'SEQ_2_SEQ_LM', r: 4, loraAlpha: 8, targetModules: ['q', 'v'] }), { metricForBestModel: 'chrf' });
    try {
      expect(s.args.metricForBestModel).toBe('eval_chrf');
      await s.step();
      const m = await s.evaluate();
      expect(s.bestMetric).toBe(s.logHistory[s.logHistory.length - 1].eval_chrf);
      expect(s.bestMetric).toBeCloseTo(m.chrf!, 4);
      expect(s.bestStep).toBe(1);
    } finally {
      s.dispose();
    }
  }, 60_000);
});

describe('SEQ_2_SEQ_LM max target length', () => {
  it('targets are cut to maxTargetLength with </s> kept last, sources to max length', async () => {
    const { config, tensors } = loadModelDir(MODEL);
    const s = await TrainingSession.create({
      config, weights: tensors, tokenizer: tok, task: 'SEQ_2_SEQ_LM', peft: loraConfig({ taskType: 'SEQ_2_SEQ_LM', r: 2, loraAlpha: 4, targetModules: ['q'] }),
      data: { train: [{ text: 'abcdefgh', target: 'abcdefgh' }] }, args: { maxSteps: 1, batchSize: 1, maxLength: 6 }, maxTargetLength: 3,
    });
    try {
      const enc = (s as unknown as { train: { ids: number[]; labels: number[] }[] }).train[0];
      expect(enc).toEqual({ ids: [3, 4, 5, 6, 7, 1], labels: [3, 4, 1] });
    } finally {
      s.dispose();
    }
  });
});

/**
 * Generation: the key/value-cache decoding gives the full forward's logits at every position (LoRA and prompt
 * tuning applied, both backends, past the cache's end and Mistral's sliding window), the sampling processors
 * do what transformers' do on hand-made logits, and generation leaks no tensors and is reproducible by seed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../src/engine/adapter/import';
import { benchGeneration } from '../src/engine/bench-generate';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { buildModel } from '../src/engine/models';
import type { DecodeOptions, Model } from '../src/engine/models/types';
import { LoraModel } from '../src/engine/peft';
import { loraConfig } from '../src/engine/peft/lora/config';
import type { PeftModel } from '../src/engine/peft/model';
import { Rng } from '../src/engine/random';
import {
  applyRepetitionPenalty, applyTemperature, argmax, generate, generateIds, sampleFrom, sampleNext, topKFilter, topPFilter,
} from '../src/engine/train/generate';
import { BACKENDS, FIX, fixtureModel, maxAbsDiff } from './helpers';

const TOL = 1e-4;
const PROMPT = [5, 17, 300, 42, 9, 123, 7];

function withAdapter(model: string, adapter: string): PeftModel {
  const dir = join(FIX, 'adapters', adapter);
  return loadAdapter(fixtureModel(model), {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  });
}

/** The fixture adapters, plus the bare base model (adapter switched off). */
const CASES = [
  { id: 'gpt2-tiny (no adapter)', make: () => off(withAdapter('gpt2-tiny', 'gpt2-lora')) },
  { id: 'gpt2-lora', make: () => withAdapter('gpt2-tiny', 'gpt2-lora') },
  { id: 'gpt2-prompt', make: () => withAdapter('gpt2-tiny', 'gpt2-prompt') },
  { id: 'llama-tiny (no adapter)', make: () => off(withAdapter('llama-tiny', 'llama-lora')) },
  { id: 'llama-lora', make: () => withAdapter('llama-tiny', 'llama-lora') },
];

function off(p: PeftModel): PeftModel {
  p.enabled = false;
  return p;
}

function free(p: PeftModel): void {
  p.dispose();
  p.base.dispose();
}

/** Max |cached logits - forward logits| over the prompt's last position and each of `steps` appended tokens. */
async function cacheVsForward(peft: PeftModel, prompt: number[], steps: number, opts: DecodeOptions = {}): Promise<number> {
  const hooks = peft.enabled ? peft.hooks(false) : {};
  const dec = peft.base.startDecoding!(prompt, hooks, opts);
  const seq = [...prompt];
  const cached: Float32Array[] = [];
  try {
    for (let n = 0; n <= steps; n++) {
      const l = (await dec.logits.data()) as Float32Array;
      cached.push(Float32Array.from(l));
      if (n === steps) break;
      const next = argmax(l);
      seq.push(next);
      dec.next(next);
    }
  } finally {
    dec.dispose();
  }
  const full = tf.tidy(() => peft.forward({ inputIds: tf.tensor2d([seq], [1, seq.length], 'int32') })); // [1, P+S, V]
  const rows = (await full.data()) as Float32Array;
  const [, S, V] = full.shape;
  full.dispose();
  let worst = 0;
  cached.forEach((l, n) => {
    const pos = S! - 1 - steps + n; // the forward's row for the same position
    worst = Math.max(worst, maxAbsDiff(l, rows.subarray(pos * V!, (pos + 1) * V!)));
  });
  return worst;
}

describe.each(BACKENDS)('KV-cache decoding on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES)('$id: cached logits equal the forward at every position; greedy tokens equal the no-cache path', async ({ make }) => {
    const peft = make();
    try {
      expect(await cacheVsForward(peft, PROMPT, 12)).toBeLessThan(TOL);
      const cached = await generateIds(peft, PROMPT, { maxNewTokens: 12, temperature: 0 });
      const plain = await generateIds(peft, PROMPT, { maxNewTokens: 12, temperature: 0, cache: false });
      expect(cached).toHaveLength(12);
      expect(cached).toEqual(plain);
    } finally {
      free(peft);
    }
  });

  it('without transposed weight copies (the wasm budget exhausted) the logits are the same', async () => {
    for (const peft of [withAdapter('gpt2-tiny', 'gpt2-lora'), withAdapter('llama-tiny', 'llama-lora')]) {
      try {
        expect(await cacheVsForward(peft, PROMPT, 6, { transposeBudgetBytes: 0 })).toBeLessThan(TOL);
        // Room for some weights but not all: copied and uncopied products mix.
        expect(await cacheVsForward(peft, PROMPT, 6, { transposeBudgetBytes: 200_000 })).toBeLessThan(TOL);
      } finally {
        free(peft);
      }
    }
  });

  it('a LoRA on the LM head (with a nonzero B) goes through the cached head too', async () => {
    const base = fixtureModel('gpt2-tiny');
    const peft = new LoraModel(base, loraConfig({ targetModules: ['c_attn', 'c_fc', 'lm_head'], r: 4, loraAlpha: 8 }), 3);
    const rng = new Rng(5);
    for (const l of peft.layers.values()) l.B.assign(tf.tensor(rng.fillNormal(l.B.size, 0.5), l.B.shape));
    try {
      expect(await cacheVsForward(peft, PROMPT, 8)).toBeLessThan(TOL);
      expect(await cacheVsForward(peft, [42], 4)).toBeLessThan(TOL); // a one-token prompt
    } finally {
      free(peft);
    }
  });

  it('past the cache (128 positions) generation continues with the forward and still matches the no-cache path', async () => {
    for (const peft of [withAdapter('gpt2-tiny', 'gpt2-prompt'), withAdapter('llama-tiny', 'llama-lora')]) {
      try {
        const prompt = Array.from({ length: 120 }, (_, i) => (i * 37 + 11) % 1000);
        const cached = await generateIds(peft, prompt, { maxNewTokens: 10, temperature: 0 });
        const plain = await generateIds(peft, prompt, { maxNewTokens: 10, temperature: 0, cache: false });
        expect(cached).toHaveLength(10); // 4 (prompt tuning: 4 virtual tokens) or 8 of them from the cache
        expect(cached).toEqual(plain);
        // A prompt that does not fit the cache at all takes the no-cache path from the start.
        const long = Array.from({ length: 130 }, (_, i) => (i * 13 + 1) % 1000);
        expect(await generateIds(peft, long, { maxNewTokens: 2, temperature: 0 })).toEqual(
          await generateIds(peft, long, { maxNewTokens: 2, temperature: 0, cache: false }),
        );
      } finally {
        free(peft);
      }
    }
  });

  it('Mistral: within the sliding window the cache is exact; past it generation falls back to the forward', async () => {
    const config = {
      model_type: 'mistral', architectures: ['MistralForCausalLM'], vocab_size: 97, hidden_size: 32, intermediate_size: 48,
      num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, sliding_window: 12,
    };
    const base = buildModel(config, new Map(), { initMissing: 'all', seed: 4 });
    const peft = new LoraModel(base, loraConfig({ targetModules: ['q_proj', 'v_proj'] }), 0);
    try {
      expect(base.maxDecodeLength).toBe(12);
      expect(await cacheVsForward(peft, [3, 1, 4, 1, 5], 6)).toBeLessThan(TOL); // 11 positions: inside the window
      const cached = await generateIds(peft, [3, 1, 4, 1, 5], { maxNewTokens: 20, temperature: 0 });
      const plain = await generateIds(peft, [3, 1, 4, 1, 5], { maxNewTokens: 20, temperature: 0, cache: false });
      expect(cached).toEqual(plain);
    } finally {
      free(peft);
    }
  });

  it('top-k = 1 samples the greedy tokens whatever the seed and temperature', async () => {
    const peft = withAdapter('llama-tiny', 'llama-lora');
    try {
      const greedy = await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0 });
      for (const seed of [1, 2]) {
        expect(await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 1.5, topK: 1, seed })).toEqual(greedy);
      }
    } finally {
      free(peft);
    }
  });

  it('the same seed gives the same text; generation frees every tensor it made', async () => {
    const peft = withAdapter('gpt2-tiny', 'gpt2-prompt');
    const tok = { encode: (s: string) => s.split(' ').map(Number), decode: (ids: number[]) => ids.join(' '), eosTokenId: 999 };
    const o = { maxNewTokens: 20, temperature: 1, topK: 50, topP: 0.9, repetitionPenalty: 1.3 };
    try {
      await generate(peft, tok, '5 17 300', { ...o, seed: 1 }); // warm-up: fills the shape caches (causal masks)
      const before = tf.memory().numTensors;
      const a = await generate(peft, tok, '5 17 300', { ...o, seed: 1 });
      expect(tf.memory().numTensors).toBe(before);
      const b = await generate(peft, tok, '5 17 300', { ...o, seed: 1 });
      expect(b).toBe(a);
      expect(a.split(' ')).toHaveLength(20);
      const others = await Promise.all([2, 3, 4].map(async (seed) => generate(peft, tok, '5 17 300', { ...o, seed })));
      expect(others.some((t) => t !== a)).toBe(true);
      // The decoding itself, and the no-cache path, leave nothing behind either.
      const dec = peft.base.startDecoding!([1, 2, 3], peft.hooks(false));
      dec.next(4);
      dec.dispose();
      dec.dispose();
      await generateIds(peft, [1, 2, 3], { maxNewTokens: 4, cache: false });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      free(peft);
    }
  });

  it('stops at EOS, and benchGeneration reports per-token timings', async () => {
    const peft = withAdapter('gpt2-tiny', 'gpt2-lora');
    try {
      const greedy = await generateIds(peft, PROMPT, { maxNewTokens: 8, temperature: 0 });
      const cut = await generateIds(peft, PROMPT, { maxNewTokens: 8, temperature: 0, eosTokenId: greedy[3] });
      expect(cut).toEqual(greedy.slice(0, greedy.indexOf(greedy[3])));
      const r = await benchGeneration(peft, 16, 5);
      expect(r.tokens).toBe(5);
      expect(r.step_ms).toHaveLength(5);
      expect(r.prefill_ms).toBeGreaterThan(0);
      expect(r.ms_per_token).toBeGreaterThan(0);
    } finally {
      free(peft);
    }
  });

  it('models without a cache say so: SEQ_CLS heads and BERT', () => {
    for (const name of ['bert-tiny-seqcls', 'gpt2-tiny-seqcls']) {
      const m: Model = fixtureModel(name);
      expect(m.startDecoding).toBeUndefined();
      expect(m.maxDecodeLength).toBeUndefined();
      m.dispose();
    }
    const m = fixtureModel('gpt2-tiny');
    expect(m.maxDecodeLength).toBe(128);
    expect(() => m.startDecoding!([])).toThrow(/at least one token/);
    expect(() => m.startDecoding!(Array(129).fill(1))).toThrow(/does not fit/);
    m.dispose();
  });
});

describe('logits processors', () => {
  const probs = (l: Float32Array) => {
    const e = Array.from(l, (x) => (x === -Infinity ? 0 : Math.exp(x)));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  const kept = (l: Float32Array) => [...l.keys()].filter((i) => l[i] > -Infinity);

  it('repetition penalty divides positive and multiplies negative logits of seen tokens, once each', () => {
    const l = new Float32Array([2, -2, 0.5, -0.5, 1]);
    const out = applyRepetitionPenalty(l, [0, 1, 1, 3, 3, 3], 2);
    expect(Array.from(out)).toEqual([1, -4, 0.5, -1, 1]);
    expect(Array.from(l)).toEqual([2, -2, 0.5, -0.5, 1]); // pure
    expect(Array.from(applyRepetitionPenalty(l, [0, 1], 1))).toEqual(Array.from(l));
    // Greedy picks after the penalty, as transformers' processors run before the argmax.
    expect(sampleNext(new Float32Array([3, 2.9]), [0], { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1.2 }, new Rng(0))).toBe(1);
  });

  it('temperature divides; top-k keeps the k largest (and ties with the k-th)', () => {
    expect(Array.from(applyTemperature(new Float32Array([1, -2, 4]), 2))).toEqual([0.5, -1, 2]);
    const l = new Float32Array([1, 5, 3, 5, 2]);
    expect(kept(topKFilter(l, 2))).toEqual([1, 3]);
    expect(kept(topKFilter(l, 3))).toEqual([1, 2, 3]);
    expect(kept(topKFilter(new Float32Array([1, 5, 3, 3, 2]), 2))).toEqual([1, 2, 3]);
    expect(kept(topKFilter(l, 0))).toEqual([0, 1, 2, 3, 4]);
    expect(kept(topKFilter(l, 9))).toEqual([0, 1, 2, 3, 4]);
  });

  it('top-p keeps the most likely tokens until their probability reaches top_p', () => {
    // probabilities 0.15, 0.5, 0.05, 0.3 (shuffled on purpose)
    const l = new Float32Array([0.15, 0.5, 0.05, 0.3].map(Math.log));
    expect(kept(topPFilter(l, 0.9))).toEqual([0, 1, 3]); // drops 0.05: 0.05 <= 0.1
    expect(kept(topPFilter(l, 0.75))).toEqual([1, 3]); // 0.05 + 0.15 <= 0.25
    expect(kept(topPFilter(l, 0.4))).toEqual([1]); // 0.5 alone reaches 0.4
    expect(kept(topPFilter(l, 0.4, 2))).toEqual([1, 3]); // min_tokens_to_keep
    expect(kept(topPFilter(l, 1))).toEqual([0, 1, 2, 3]);
    // After top-k, top-p works on what is left.
    expect(kept(topPFilter(topKFilter(l, 2), 0.6))).toEqual([1]); // 0.5 / 0.8 = 0.625 >= 0.6
    expect(kept(topPFilter(topKFilter(l, 2), 0.7))).toEqual([1, 3]);
    const p = probs(topPFilter(l, 0.75));
    expect(p[1]).toBeCloseTo(0.5 / 0.8, 6);
  });

  it('sampling draws tokens with their softmax probabilities and never a filtered one', () => {
    const l = new Float32Array([0.5, 0.3, 0.2, 0].map(Math.log)); // the last is -Infinity
    const rng = new Rng(11);
    const counts = [0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[sampleFrom(l, rng)]++;
    expect(counts[3]).toBe(0);
    expect(Math.abs(counts[0] / N - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(counts[1] / N - 0.3)).toBeLessThan(0.02);
    expect(Math.abs(counts[2] / N - 0.2)).toBeLessThan(0.02);
    // top-k = 1 is greedy whatever the draw.
    const o = { temperature: 2, topK: 1, topP: 1, repetitionPenalty: 1 };
    for (let s = 0; s < 20; s++) expect(sampleNext(new Float32Array([0.1, 0.4, 0.39, -3]), [], o, new Rng(s))).toBe(1);
  });
});

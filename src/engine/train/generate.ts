/** Text generation and classification with a (PEFT) model, for the playground and the CLI. */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { Decoding } from '../models/types';
import type { PeftModel } from '../peft/model';
import { setPackPolicy } from '../wasm-matmul';

export interface GenerateOptions {
  /** Default 40. */
  maxNewTokens?: number;
  /** 0 = greedy (argmax after the repetition penalty). Default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 40. */
  topK?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to top_p; 1 = off. Default 1. */
  topP?: number;
  /** transformers' repetition_penalty over the prompt and the tokens generated so far; 1 = off. Default 1. */
  repetitionPenalty?: number;
  seed?: number;
  /** Use the model's key/value cache when it has one (default true); false reruns the forward per token. */
  cache?: boolean;
  /** Called with the new ids so far after each token (awaited: it may yield so a stop request can arrive). */
  onToken?: (ids: readonly number[]) => void | Promise<void>;
  /** Asked before each token; true ends the generation with what it has (the model stays usable). */
  shouldStop?: () => boolean;
  /** More ids that end the generation (a chat template's end-of-turn), besides the EOS. */
  stopIds?: readonly number[];
  /** generate() only: called with the decoded text so far after each token. */
  onText?: (text: string) => void | Promise<void>;
  /**
   * generate() only: false encodes the prompt as it is, without the tokenizer's special tokens (a rendered chat
   * template has its own BOS, as apply_chat_template(tokenize=True) encodes); default true.
   */
  addSpecialTokens?: boolean;
}

interface Tok {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[]): string;
  eosTokenId?: number | null;
}

/** Generates a continuation of `prompt` (text in, text out; see generateIds). */
export async function generate(peft: PeftModel, tok: Tok, prompt: string, o: GenerateOptions = {}): Promise<string> {
  const ids = o.addSpecialTokens === false ? tok.encode(prompt, { addSpecialTokens: false }) : tok.encode(prompt);
  if (ids.length === 0 && tok.eosTokenId != null) ids.push(tok.eosTokenId);
  const onText = o.onText;
  return tok.decode(await generateIds(peft, ids, { ...o, eosTokenId: tok.eosTokenId, onToken: onText && ((out) => onText(tok.decode([...out]))) }));
}

/**
 * The new token ids after `promptIds` (stopping before EOS). With a key/value cache the prompt is prefilled
 * once and each token is one step over the cache; once the cache is full (the model's positions, or Mistral's
 * sliding window) each token reruns the forward over the last positions that fit, as the no-cache path does
 * from the start. Both paths give the same logits, so the same tokens.
 */
export async function generateIds(
  peft: PeftModel, promptIds: number[], o: GenerateOptions & { eosTokenId?: number | null } = {},
): Promise<number[]> {
  const maxNew = o.maxNewTokens ?? 40;
  const sampling: SamplingOptions = {
    temperature: o.temperature ?? 0.8,
    topK: o.topK ?? 40,
    topP: o.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? 1,
  };
  const rng = new Rng(o.seed ?? 0);
  const hooks = peft.enabled ? peft.hooks(false) : {};
  const virtual = peft.enabled ? peft.virtualTokens : 0;
  const window = peft.base.config.maxPositions - virtual;
  const ids = [...promptIds];
  const out: number[] = [];
  if (maxNew <= 0 || ids.length === 0) return out;
  // Only the decoding's own weight copies stay packed between tokens (layers.ts LinearProducts); they and their
  // packed forms are freed when it ends, so the playground leaves no memory behind (see wasm-matmul.ts).
  const policy = setPackPolicy('marked');
  let dec: Decoding | null = null;
  try {
    const base = peft.base;
    // A prompt longer than the cache goes the no-cache way from the start.
    if (o.cache !== false && base.startDecoding && virtual + ids.length <= (base.maxDecodeLength ?? 0)) {
      // wasm: the weight copies (layers.ts LinearProducts) cost about as much to make as 15 tokens save (measured
      // on GPT-2-124M's head and SmolLM2-135M), but without them every product would copy its weight under the
      // 'marked' pack policy, so every decoding makes them.
      dec = base.startDecoding(ids, hooks);
    }
    for (let n = 0; n < maxNew; n++) {
      if (o.shouldStop?.()) break;
      const logits = dec ? ((await dec.logits.data()) as Float32Array) : await lastLogits(peft, ids.slice(-window));
      const next = sampleNext(logits, ids, sampling, rng);
      if (next === o.eosTokenId || o.stopIds?.includes(next)) break;
      ids.push(next);
      out.push(next);
      await o.onToken?.(out);
      if (n + 1 === maxNew || !dec) continue;
      if (dec.length < dec.maxLength) dec.next(next);
      else {
        dec.dispose();
        dec = null;
      }
    }
  } finally {
    dec?.dispose();
    setPackPolicy(policy);
  }
  return out;
}

/** Last-position logits of the plain forward (the no-cache path). */
async function lastLogits(peft: PeftModel, ids: number[]): Promise<Float32Array> {
  const last = tf.tidy(() => {
    const out = peft.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') }); // [1, S, V]
    const S = out.shape[1]!;
    return out.slice([0, S - 1, 0], [1, 1, -1]).reshape([-1]);
  });
  const logits = (await last.data()) as Float32Array;
  last.dispose();
  return logits;
}

// ---------------------------------------------------------------------------------------------------------
// Logits processors: pure functions on one row of logits, applied in transformers' order (repetition
// penalty, then temperature, top-k, top-p), each returning a new array.

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off. */
  repetitionPenalty: number;
}

/**
 * transformers' RepetitionPenaltyLogitsProcessor: for every token already in the sequence, positive logits are
 * divided by the penalty and negative ones multiplied by it (so > 1 always makes repeats less likely).
 */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): Float32Array {
  const out = Float32Array.from(logits);
  if (penalty === 1) return out;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= out.length) continue;
    const l = logits[id];
    out[id] = l < 0 ? l * penalty : l / penalty;
  }
  return out;
}

/** Logits divided by the temperature (TemperatureLogitsWarper). */
export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  return logits.map((l) => l / temperature);
}

/**
 * TopKLogitsWarper: -Infinity for tokens below the k-th largest logit (ties with it are kept, as transformers'
 * `scores < topk(...)[-1]` keeps them). k <= 0 or k >= V: unchanged.
 */
export function topKFilter(logits: Float32Array, k: number): Float32Array {
  const out = Float32Array.from(logits);
  if (k <= 0 || k >= logits.length) return out;
  const kth = Float32Array.from(logits).sort()[logits.length - k]; // native numeric sort, ascending
  for (let i = 0; i < out.length; i++) if (out[i] < kth) out[i] = -Infinity;
  return out;
}

/**
 * TopPLogitsWarper: sorted by probability, the least likely tokens whose cumulative probability is at most
 * 1 - top_p are removed (-Infinity), keeping at least `minKeep`; what is left is the smallest set of most likely
 * tokens whose probabilities reach top_p. Tokens tied with the least likely kept one are kept too.
 */
export function topPFilter(logits: Float32Array, topP: number, minKeep = 1): Float32Array {
  const out = Float32Array.from(logits);
  if (topP >= 1) return out;
  const finite = Float32Array.from(logits.filter((l) => l > -Infinity)).sort(); // ascending
  const n = finite.length;
  if (n === 0) return out;
  const max = finite[n - 1];
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.exp(finite[i] - max);
  // Count the removable tokens from the least likely up.
  let cum = 0;
  let removed = 0;
  while (removed < n - minKeep) {
    cum += Math.exp(finite[removed] - max) / total;
    if (cum > 1 - topP) break;
    removed++;
  }
  const threshold = finite[removed]; // the least likely kept logit
  for (let i = 0; i < out.length; i++) if (out[i] < threshold) out[i] = -Infinity;
  return out;
}

/** Index of the largest value (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Draws a token from softmax(logits) (-Infinity entries never), with one uniform number from rng. */
export function sampleFrom(logits: Float32Array, rng: Rng): number {
  const max = logits[argmax(logits)];
  const ps = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += ps[i] = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
  let r = rng.next() * total;
  let last = 0;
  for (let i = 0; i < ps.length; i++) {
    if (ps[i] === 0) continue;
    last = i;
    r -= ps[i];
    if (r < 0) return i;
  }
  return last; // rounding left r at or just above 0
}

/** The next token for one row of logits: processors in transformers' order, then argmax or a draw. */
export function sampleNext(logits: Float32Array, seen: Iterable<number>, o: SamplingOptions, rng: Rng): number {
  let l = applyRepetitionPenalty(logits, seen, o.repetitionPenalty);
  if (o.temperature <= 0) return argmax(l);
  if (o.temperature !== 1) l = applyTemperature(l, o.temperature);
  l = topKFilter(l, o.topK);
  l = topPFilter(l, o.topP);
  return sampleFrom(l, rng);
}

/** Class probabilities for one tokenized text. */
export async function classify(peft: PeftModel, ids: number[]): Promise<{ label: number; probs: number[] }> {
  const p = tf.tidy(() => tf.softmax(peft.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') })));
  const probs = Array.from(await p.data());
  p.dispose();
  let label = 0;
  probs.forEach((p, i) => (p > probs[label] ? (label = i) : 0));
  return { label, probs };
}

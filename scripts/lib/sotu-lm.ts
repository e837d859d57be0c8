/**
 * Shared pieces of the built-in model's pretraining (scripts/pretrain-model.ts) and its test
 * (test/builtin-model.test.ts): the GPT-2 config it is built from, corpus tokenization, fixed-length windows, the
 * model's mean next-token NLL over windows, and the add-one-smoothed unigram baseline.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../src/engine/models/types';
import type { Tokenizer } from '../../src/engine/tokenizer';

/** transformers version whose save_pretrained output the files imitate (the one the test fixtures come from). */
export const TRANSFORMERS_VERSION = '4.43.4';

export interface Gpt2Size {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nPositions: number;
  vocabSize: number;
  /** resid / embd / attn dropout, the same value for all three. */
  dropout: number;
}

/**
 * config.json as transformers' GPT2Config.save_pretrained writes it (the fields of
 * test/fixtures/models/gpt2-tiny/config.json), for a model whose bos = eos = `<|endoftext|>` = id 0.
 * pad_token_id is left out, as in every GPT-2 config: transformers falls back to eos for generation and
 * PEFT Studio's session sets it from the tokenizer's pad token (also id 0) for sequence classification.
 */
export function gpt2Config(s: Gpt2Size): Record<string, unknown> {
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: s.dropout,
    bos_token_id: 0,
    embd_pdrop: s.dropout,
    eos_token_id: 0,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: 'gpt2',
    n_embd: s.nEmbd,
    n_head: s.nHead,
    n_inner: null,
    n_layer: s.nLayer,
    n_positions: s.nPositions,
    reorder_and_upcast_attn: false,
    resid_pdrop: s.dropout,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: s.vocabSize,
  };
}

/** generation_config.json as save_pretrained derives it from the config above. */
export function generationConfig(): Record<string, unknown> {
  return { _from_model_config: true, bos_token_id: 0, eos_token_id: 0, transformers_version: TRANSFORMERS_VERSION };
}

/** The addresses of a corpus file (scripts/data/README.md: one per line, separated by a blank line). */
export function readSpeeches(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n\n')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Encodes each address and packs them into one stream, `<|endoftext|>` before each (GPT-2 style packing). */
export function encodeStream(tok: Tokenizer, speeches: string[], eos: number): Int32Array {
  const parts = speeches.map((s) => tok.encode(s, { addSpecialTokens: false }));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let pos = 0;
  for (const p of parts) {
    out[pos++] = eos;
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Non-overlapping windows of `len` tokens covering the stream (the last, partial one dropped if under 2 tokens). */
export function windows(ids: Int32Array, len: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i + 1 < ids.length; i += len) {
    const w = ids.subarray(i, Math.min(i + len, ids.length));
    if (w.length >= 2) out.push(w);
  }
  return out;
}

/**
 * Sum of -log p(next token) over every window position after the first, and the number of such targets.
 * Windows of equal length are batched together.
 */
export function modelNll(model: Model, wins: Int32Array[], batchSize = 8): { nll: number; count: number } {
  let nll = 0;
  let count = 0;
  for (let i = 0; i < wins.length; ) {
    const len = wins[i].length;
    let j = i;
    while (j < wins.length && j - i < batchSize && wins[j].length === len) j++;
    const group = wins.slice(i, j);
    const B = group.length;
    const flat = new Int32Array(B * len);
    group.forEach((w, b) => flat.set(w, b * len));
    const sum = tf.tidy(() => {
      const ids = tf.tensor2d(flat, [B, len], 'int32');
      const logits = model.forward({ inputIds: ids });
      const V = logits.shape[2]!;
      const lp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [B, len - 1, V]).reshape([B * (len - 1), V]), -1);
      const target = tf.slice(ids, [0, 1], [B, len - 1]).reshape([B * (len - 1)]);
      const picked = tf.sum(tf.mul(lp, tf.oneHot(target, V).toFloat()), -1);
      return tf.neg(tf.sum(picked)).dataSync()[0];
    });
    nll += sum;
    count += B * (len - 1);
    i = j;
  }
  return { nll, count };
}

/** Add-one (Laplace) smoothed unigram log-probabilities fitted on `ids`. */
export function unigramLogProbs(ids: Int32Array, vocabSize: number): Float64Array {
  const counts = new Float64Array(vocabSize);
  for (const t of ids) counts[t] += 1;
  const total = ids.length + vocabSize;
  return counts.map((c) => Math.log((c + 1) / total));
}

/** The unigram's NLL on exactly the targets modelNll scores (every window position after the first). */
export function unigramNll(logp: Float64Array, wins: Int32Array[]): { nll: number; count: number } {
  let nll = 0;
  let count = 0;
  for (const w of wins) {
    for (let k = 1; k < w.length; k++) nll -= logp[w[k]];
    count += w.length - 1;
  }
  return { nll, count };
}

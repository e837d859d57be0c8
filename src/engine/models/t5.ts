/**
 * T5 (T5ForConditionalGeneration, SEQ_2_SEQ_LM), following transformers 4.43's modeling_t5.py (eager attention).
 * Parameter names are the checkpoint keys; every projection is a bias-free nn.Linear ([out, in]).
 *
 * What sets T5 apart:
 * - an encoder and a decoder stack (T5Stack) over one `shared` embedding (`encoder.embed_tokens` and
 *   `decoder.embed_tokens` ARE `shared`, so named_modules() lists neither);
 * - T5LayerNorm = RMS norm without mean or bias (eps layer_norm_epsilon), before every sublayer, plus a final norm
 *   per stack;
 * - attention without the 1/sqrt(d_kv) scale; heads of d_kv (inner width num_heads * d_kv may differ from d_model);
 * - a relative position bias instead of position embeddings: only block 0 of each stack owns
 *   `relative_attention_bias` [num_buckets, num_heads]; its bias[h, i, j] = table[bucket(j - i), h] is computed
 *   once and added (with the mask) to the scores of every layer of that stack. Buckets are bidirectional in the
 *   encoder and causal in the decoder; cross-attention has no position bias;
 * - the FF block: v1.0 `wo(relu(wi(x)))` (T5DenseActDense), v1.1 / flan-t5 `wo(gelu_new(wi_0(x)) * wi_1(x))`
 *   (T5DenseGatedActDense, feed_forward_proj "gated-gelu");
 * - a tied LM head (v1.0, tie_word_embeddings true) reads `shared` and rescales the decoder output by
 *   d_model^-0.5 first; v1.1 has its own lm_head and no rescale;
 * - the decoder's inputs are the labels shifted right with decoder_start_token_id in front and -100 -> pad
 *   (`shiftRight`), as T5ForConditionalGeneration derives them.
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, block, cachedDecoding, cachedTensor, dropout, embedding, gated, linear, makeCtx, mergeHeads, MASK_VALUE, prefixMask, prependPrefix,
  rmsNorm, splitHeads, type Ctx,
} from './layers';
import { field, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, Decoding, ForwardHooks, ForwardInput, Model, TaskType } from './types';
import { EngineError } from '../errors';
import { quoteValue } from '../quote';

export interface T5Config extends ArchConfig {
  dModel: number;
  dKv: number;
  dFf: number;
  numDecoderLayers: number;
  numBuckets: number;
  maxDistance: number;
  /** dense_act_fn, from feed_forward_proj ("gated-gelu" -> gelu_new). */
  denseAct: string;
  /** feed_forward_proj "gated-*": T5DenseGatedActDense (wi_0, wi_1); else T5DenseActDense (wi). */
  gatedAct: boolean;
  dropoutRate: number;
  layerNormEps: number;
  initializerFactor: number;
  decoderStartTokenId: number;
}

function parseConfig(raw: Record<string, unknown>): T5Config {
  const dModel = requiredInt(raw, 'd_model');
  const heads = requiredInt(raw, 'num_heads');
  const numLayers = requiredInt(raw, 'num_layers');
  // T5Config.__init__: feed_forward_proj "relu", "gelu", "gated-gelu", "gated-silu", ... ; "gated-gelu" means gelu_new.
  const ffProj: string = field(raw, 'feed_forward_proj', 'relu');
  const parts = ffProj.split('-');
  const gatedAct = parts[0] === 'gated';
  if ((parts.length > 1 && !gatedAct) || parts.length > 2) {
    throw new TypeError(
      `config.json: feed_forward_proj ${quoteValue(ffProj)} is not a valid activation; use "relu", "gelu", "gated-gelu" or "gated-<act>"`,
    );
  }
  const denseAct = ffProj === 'gated-gelu' ? 'gelu_new' : parts[parts.length - 1];
  if (!['relu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'silu', 'swish', 'tanh'].includes(denseAct)) {
    throw new TypeError(`config.json: feed_forward_proj ${quoteValue(ffProj)}: activation ${quoteValue(denseAct)} is not supported`);
  }
  const nd = raw.num_decoder_layers;
  const padTokenId = raw.pad_token_id === undefined ? 0 : optionalId(raw, 'pad_token_id');
  const start = raw.decoder_start_token_id === undefined || raw.decoder_start_token_id === null
    ? padTokenId ?? 0 : optionalId(raw, 'decoder_start_token_id')!;
  return {
    modelType: 't5',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: dModel,
    dModel,
    dKv: requiredInt(raw, 'd_kv'),
    dFf: requiredInt(raw, 'd_ff'),
    numLayers,
    numDecoderLayers: nd === undefined || nd === null ? numLayers : requiredInt(raw, 'num_decoder_layers'),
    numHeads: heads,
    numBuckets: field(raw, 'relative_attention_num_buckets', 32),
    maxDistance: field(raw, 'relative_attention_max_distance', 128),
    // Relative positions: no learned table limits the length (n_positions is only a tokenizer hint).
    maxPositions: field(raw, 'n_positions', 512),
    denseAct,
    gatedAct,
    dropoutRate: field(raw, 'dropout_rate', 0.1),
    layerNormEps: field(raw, 'layer_norm_epsilon', 1e-6),
    initializerFactor: field(raw, 'initializer_factor', 1),
    numLabels: 2,
    // T5Config's defaults: pad 0, eos 1, decoder_start_token_id = pad.
    padTokenId,
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: raw.eos_token_id === undefined ? 1 : optionalId(raw, 'eos_token_id'),
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
    decoderStartTokenId: start,
  };
}

function className(_c: T5Config, task: TaskType): string | undefined {
  return task === 'SEQ_2_SEQ_LM' ? 'T5ForConditionalGeneration' : undefined;
}

/** Class names transformers' ACT2FN gives the activation module. */
function activationClass(act: string): string {
  const names: Record<string, string> = {
    relu: 'ReLU', gelu: 'GELUActivation', gelu_new: 'NewGELUActivation', gelu_pytorch_tanh: 'PytorchGELUTanh', gelu_fast: 'FastGELUActivation',
    silu: 'SiLU', swish: 'SiLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

function modules(c: T5Config, task: TaskType) {
  const C = c.dModel;
  const inner = c.numHeads * c.dKv;
  const t = new TreeBuilder();
  const attention = (p: string, bias: boolean) => {
    t.add(p, 'T5Attention');
    t.linear(`${p}.q`, C, inner, false).linear(`${p}.k`, C, inner, false).linear(`${p}.v`, C, inner, false).linear(`${p}.o`, inner, C, false);
    if (bias) t.embedding(`${p}.relative_attention_bias`, c.numBuckets, c.numHeads);
  };
  const norm = (name: string) => t.add(name, 'T5LayerNorm', { weight: [C] });
  const ff = (p: string) => {
    t.add(p, 'T5LayerFF');
    const d = `${p}.DenseReluDense`;
    if (c.gatedAct) {
      t.add(d, 'T5DenseGatedActDense').linear(`${d}.wi_0`, C, c.dFf, false).linear(`${d}.wi_1`, C, c.dFf, false);
    } else {
      t.add(d, 'T5DenseActDense').linear(`${d}.wi`, C, c.dFf, false);
    }
    t.linear(`${d}.wo`, c.dFf, C, false).add(`${d}.dropout`, 'Dropout').add(`${d}.act`, activationClass(c.denseAct));
    norm(`${p}.layer_norm`);
    t.add(`${p}.dropout`, 'Dropout');
  };
  const stack = (s: 'encoder' | 'decoder', n: number) => {
    t.add(s, 'T5Stack');
    t.add(`${s}.block`, 'ModuleList');
    for (let i = 0; i < n; i++) {
      const b = `${s}.block.${i}`;
      t.add(b, 'T5Block');
      t.add(`${b}.layer`, 'ModuleList');
      t.add(`${b}.layer.0`, 'T5LayerSelfAttention');
      attention(`${b}.layer.0.SelfAttention`, i === 0);
      norm(`${b}.layer.0.layer_norm`);
      t.add(`${b}.layer.0.dropout`, 'Dropout');
      if (s === 'decoder') {
        t.add(`${b}.layer.1`, 'T5LayerCrossAttention');
        attention(`${b}.layer.1.EncDecAttention`, false);
        norm(`${b}.layer.1.layer_norm`);
        t.add(`${b}.layer.1.dropout`, 'Dropout');
      }
      ff(`${b}.layer.${s === 'decoder' ? 2 : 1}`);
    }
    norm(`${s}.final_layer_norm`);
    t.add(`${s}.dropout`, 'Dropout');
  };
  t.add('', className(c, task) ?? 'T5ForConditionalGeneration');
  t.embedding('shared', c.vocabSize, C);
  stack('encoder', c.numLayers);
  stack('decoder', c.numDecoderLayers);
  t.linear('lm_head', C, c.vocabSize, false);
  return t.rows;
}

/**
 * T5Attention._relative_position_bucket for one relative position (key - query), in float32 as torch computes
 * the large-distance branch: bidirectional halves the buckets and gives positive distances the upper half; causal
 * keeps only keys at or before the query (later keys fall in bucket 0). Distances below max_exact (half the
 * buckets left) have a bucket each; longer ones share log-spaced buckets up to max_distance.
 */
export function relativePositionBucket(rel: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let buckets = 0;
  let n = numBuckets;
  let r: number;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) buckets += n;
    r = Math.abs(rel);
  } else {
    r = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (r < maxExact) return buckets + r;
  const f = Math.fround;
  const large = maxExact + Math.trunc(f(f(f(Math.log(f(f(r) / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact)));
  return buckets + Math.min(large, n - 1);
}

/** Buckets [q, k] of query i (at position offset + i) against key j, as compute_bias builds them. */
export function bucketTable(c: T5Config, queries: number, keys: number, bidirectional: boolean, offset = 0): Int32Array {
  const out = new Int32Array(queries * keys);
  for (let i = 0; i < queries; i++) {
    for (let j = 0; j < keys; j++) out[i * keys + j] = relativePositionBucket(j - (offset + i), bidirectional, c.numBuckets, c.maxDistance);
  }
  return out;
}

/** compute_bias: [1, H, q, k] from the stack's block-0 table (relative_attention_bias [buckets, H]). */
function positionBias(c: T5Config, ctx: Ctx, stack: 'encoder' | 'decoder', queries: number, keys: number, offset = 0): tf.Tensor {
  const make = () => tf.tensor2d(bucketTable(c, queries, keys, stack === 'encoder', offset), [queries, keys], 'int32');
  // A decoding step's row changes with every position: built, not cached.
  const ids = offset ? make() : cachedTensor(`t5-buckets:${stack === 'encoder'}:${c.numBuckets}:${c.maxDistance}:${queries}:${keys}`, make);
  const values = embedding(ctx, `${stack}.block.0.layer.0.SelfAttention.relative_attention_bias`, ids); // [q, k, H]
  return tf.transpose(values, [2, 0, 1]).expandDims(0); // [1, H, q, k]
}

/** Additive key mask [B, 1, 1, S] from an attention mask (MASK_VALUE on padding), or none. */
function keyMask(mask: tf.Tensor | undefined, B: number, S: number): tf.Tensor | null {
  if (!mask) return null;
  return tf.mul(tf.sub(1, mask.toFloat()), MASK_VALUE).reshape([B, 1, 1, S]);
}

/** [1, 1, S, L+S] causal bias for S queries at positions L.. over L+S keys. */
function causalMask(S: number, past = 0): tf.Tensor {
  return cachedTensor(`t5-causal:${S}:${past}`, () => {
    const n = past + S;
    const m = new Float32Array(S * n);
    for (let i = 0; i < S; i++) for (let j = past + i + 1; j < n; j++) m[i * n + j] = MASK_VALUE;
    return tf.tensor4d(m, [1, 1, S, n]);
  });
}

/** Keys and values of one attention over a fixed memory (cross-attention over the encoder output). */
export interface KV {
  k: tf.Tensor;
  v: tf.Tensor;
}

/** T5Attention (no scale): q from x, k / v from `kv` (self-attention: from x; cross-attention: from memory). */
function attention(c: T5Config, ctx: Ctx, p: string, x: tf.Tensor, kv: KV, bias: tf.Tensor): tf.Tensor {
  const q = splitHeads(linear(ctx, `${p}.q`, x), c.numHeads, c.dKv); // [B, H, S, d_kv]
  const y = attend(ctx, q, kv.k, kv.v, bias, 1, c.dropoutRate);
  return linear(ctx, `${p}.o`, mergeHeads(y));
}

/** Projects `memory` into heads for attention `p`: k, v [B, H, L, d_kv]. */
export function projectKV(c: T5Config, ctx: Ctx, p: string, memory: tf.Tensor): KV {
  return {
    k: splitHeads(linear(ctx, `${p}.k`, memory), c.numHeads, c.dKv),
    v: splitHeads(linear(ctx, `${p}.v`, memory), c.numHeads, c.dKv),
  };
}

/** T5LayerFF: x + dropout(DenseReluDense(layer_norm(x))). */
function feedForward(c: T5Config, ctx: Ctx, p: string, x: tf.Tensor): tf.Tensor {
  const h = rmsNorm(ctx, `${p}.layer_norm`, x, c.layerNormEps);
  const d = `${p}.DenseReluDense`;
  const inner = c.gatedAct
    ? gated(c.denseAct, linear(ctx, `${d}.wi_0`, h), linear(ctx, `${d}.wi_1`, h))
    : activation(c.denseAct, linear(ctx, `${d}.wi`, h));
  return tf.add(x, dropout(ctx, linear(ctx, `${d}.wo`, dropout(ctx, inner, c.dropoutRate)), c.dropoutRate));
}

/** Self-attention sublayer; with `cache` the new keys / values go after the cached ones (decoding). */
function selfAttention(c: T5Config, ctx: Ctx, b: string, x: tf.Tensor, bias: tf.Tensor, cache?: SelfCache): tf.Tensor {
  const p = `${b}.layer.0.SelfAttention`;
  const h = rmsNorm(ctx, `${b}.layer.0.layer_norm`, x, c.layerNormEps);
  let kv = projectKV(c, ctx, p, h);
  if (cache) {
    if (cache.past) kv = { k: tf.concat([cache.past.k, kv.k], 2), v: tf.concat([cache.past.v, kv.v], 2) };
    cache.present = kv;
  }
  return tf.add(x, dropout(ctx, attention(c, ctx, p, h, kv, bias), c.dropoutRate));
}

/** The encoder's output [B, P+T, C] (after final_layer_norm) and its additive key mask [B, 1, 1, P+T] (or null). */
export interface Encoded {
  hidden: tf.Tensor;
  mask: tf.Tensor | null;
}

/**
 * The encoder stack. Prompt tuning's virtual tokens go in front of the token embeddings and get ones in the mask
 * (PeftModelForSeq2SeqLM feeds them to the encoder only), so the relative buckets span P+T positions.
 */
export function encode(c: T5Config, ctx: Ctx, input: ForwardInput): Encoded {
  const [B, T] = input.inputIds.shape;
  let x = prependPrefix(ctx, embedding(ctx, 'shared', input.inputIds)); // [B, S, C]
  const S = x.shape[1]!;
  const mask = keyMask(prefixMask(ctx, input.attentionMask, B, T), B, S); // [B, 1, 1, S]
  const pos = positionBias(c, ctx, 'encoder', S, S); // [1, H, S, S]
  const bias = mask ? tf.add(pos, mask) : pos;
  x = dropout(ctx, x, c.dropoutRate);
  for (let i = 0; i < c.numLayers; i++) {
    const b = `encoder.block.${i}`;
    x = block(ctx, b, x, [bias], (h, [bb]) => feedForward(c, ctx, `${b}.layer.1`, selfAttention(c, ctx, b, h, bb)));
  }
  x = dropout(ctx, rmsNorm(ctx, 'encoder.final_layer_norm', x, c.layerNormEps), c.dropoutRate);
  return { hidden: x, mask };
}

/** One decoder layer's self-attention cache while decoding. */
export interface SelfCache {
  past?: KV;
  present?: KV;
}

/**
 * The decoder stack over S decoder tokens at positions past..past+S-1: causal self-attention (cached keys first
 * when decoding), cross-attention to the encoder output (keys / values `cross[i]`, projected once per encoding)
 * under the encoder's mask, then the FF block. Returns the final hidden states [B, S, C], rescaled by
 * d_model^-0.5 when the LM head is tied (T5ForConditionalGeneration does so before lm_head).
 */
export function decode(
  c: T5Config, ctx: Ctx, ids: tf.Tensor, enc: Encoded, cross: (i: number) => KV, caches?: SelfCache[], past = 0,
): tf.Tensor {
  const S = ids.shape[1]!;
  let x = dropout(ctx, embedding(ctx, 'shared', ids), c.dropoutRate); // [B, S, C]
  // One new token sees every key: no causal mask.
  const pos = positionBias(c, ctx, 'decoder', S, past + S, past);
  const selfBias = S === 1 && past > 0 ? pos : tf.add(pos, causalMask(S, past)); // [1, H, S, past+S]
  const L = enc.hidden.shape[1]!;
  const crossBias = enc.mask ?? cachedTensor(`zeros:1,1,1,${L}`, () => tf.zeros([1, 1, 1, L]));
  for (let i = 0; i < c.numDecoderLayers; i++) {
    const b = `decoder.block.${i}`;
    const layer = (h: tf.Tensor, sb: tf.Tensor, cb: tf.Tensor, kv: KV) => {
      h = selfAttention(c, ctx, b, h, sb, caches?.[i]);
      const p = `${b}.layer.1`;
      const n = rmsNorm(ctx, `${p}.layer_norm`, h, c.layerNormEps);
      h = tf.add(h, dropout(ctx, attention(c, ctx, `${p}.EncDecAttention`, n, kv, cb), c.dropoutRate));
      return feedForward(c, ctx, `${b}.layer.2`, h);
    };
    if (caches) {
      x = layer(x, selfBias, crossBias, cross(i));
    } else {
      // Each block in its own scope. Not checkpointed: a checkpointed block's inputs besides x get no gradient,
      // and the encoder output that cross-attention reads must pass its gradient on to the encoder.
      const h0 = x;
      x = tf.tidy(() => layer(h0, selfBias, crossBias, projectKV(c, ctx, `${b}.layer.1.EncDecAttention`, enc.hidden)));
    }
  }
  x = dropout(ctx, rmsNorm(ctx, 'decoder.final_layer_norm', x, c.layerNormEps), c.dropoutRate);
  return c.tieWordEmbeddings ? tf.mul(x, c.dModel ** -0.5) : x;
}

/**
 * T5's _shift_right: decoder inputs [B, T] = decoder_start_token_id, then labels[:, :-1], with -100 replaced by
 * pad_token_id.
 */
export function shiftRight(labels: tf.Tensor, startId: number, padId: number): tf.Tensor {
  return tf.tidy(() => {
    const [B, T] = labels.shape;
    const l = labels.toInt();
    const body = tf.slice(l, [0, 0], [B, T - 1]);
    const shifted = tf.concat([tf.fill([B, 1], startId, 'int32'), body], 1);
    return tf.where(tf.equal(shifted, -100), tf.fill([B, T], padId, 'int32'), shifted);
  });
}

/** The decoder inputs of a forward: given, else derived from labels; an error when neither is there. */
function decoderInputs(c: T5Config, input: ForwardInput): tf.Tensor {
  if (input.decoderInputIds) return input.decoderInputIds;
  if (input.labels) return shiftRight(input.labels, c.decoderStartTokenId, c.padTokenId ?? 0);
  throw new Error('T5 needs decoder input ids or labels for its decoder');
}

function hidden(c: T5Config, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const enc = encode(c, ctx, input);
  return decode(c, ctx, decoderInputs(c, input), enc, () => {
    throw new Error('internal: cross keys are projected inside the block');
  });
}

/**
 * Greedy / sampled decoding with a cache (ArchitectureSpec.seq2seq): the encoder runs once on the source, each
 * decoder layer's cross-attention keys / values are projected once from its output, and every step runs one
 * decoder token over the self-attention cache. The first logits are those after decoder_start_token_id.
 */
function startDecoding(model: Model, sourceIds: number[], hooks: ForwardHooks): Decoding {
  const c = model.config as T5Config;
  if (sourceIds.length === 0) throw new EngineError('BAD_ARGUMENT', 'Decoding needs a source of at least one token.');
  const ctx = makeCtx(model.params, hooks);
  const L = c.numDecoderLayers;
  const memory = tf.tidy(() => {
    const enc = encode(c, ctx, { inputIds: tf.tensor2d([sourceIds], [1, sourceIds.length], 'int32') });
    const kv = Array.from({ length: L }, (_, i) => projectKV(c, ctx, `decoder.block.${i}.layer.1.EncDecAttention`, enc.hidden));
    return { hidden: enc.hidden, k: kv.map((x) => x.k), v: kv.map((x) => x.v) };
  });
  const maxLength = c.maxPositions;
  return cachedDecoding({
    first: [c.decoderStartTokenId],
    startLength: 0,
    maxLength,
    full: `The decoder is full: this model takes at most ${maxLength} positions.`,
    step: (ids, past, length) => {
      const caches: SelfCache[] = Array.from({ length: L }, (_, i) => ({ past: past[i] }));
      const out = tf.tidy(() => {
        const x = decode(c, ctx, tf.tensor2d([ids], [1, ids.length], 'int32'), { hidden: memory.hidden, mask: null }, (i) => ({ k: memory.k[i], v: memory.v[i] }), caches, length);
        const y = head(c, model.task, ctx, x).reshape([-1]) as tf.Tensor1D;
        return { y, k: caches.map((q) => q.present!.k), v: caches.map((q) => q.present!.v) };
      });
      return { logits: out.y, present: out.k.map((k, i) => ({ k, v: out.v[i] })), added: ids.length };
    },
    release: () => tf.dispose([memory.hidden, ...memory.k, ...memory.v]),
  });
}

function head(_c: T5Config, _task: TaskType, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  return linear(ctx, 'lm_head', x); // lm_head.weight is shared's when tied
}

export const t5: ArchitectureSpec<T5Config> = {
  id: 't5',
  modelTypes: ['t5'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for t5.
  peftDefaults: () => ({ lora: ['q', 'v'], adalora: ['q', 'v'], ia3: ['k', 'v', 'wo'], ia3Feedforward: ['wo'] }),
  roles: {
    attention: /\.(SelfAttention|EncDecAttention)\.[qkvo]$/,
    mlp: /\.DenseReluDense\.(wi|wi_0|wi_1|wo)$/,
    head: /^lm_head$/,
  },
  ffnSize: (c) => c.dFf,
  // v1.1 / flan-t5 ("gated-gelu"): wi_0 and wi_1 are both F wide, as in the LLaMA family's gate and up.
  mlpKind: (c) => (c.gatedAct ? 'gated' : 'plain'),
  // Each decoder block also keeps its cross-attention's norm input, query input, queries and output input (4 C per
  // token) and its probabilities (H x source length) next to a self-attention block's 8 C + 2 F + H T: about 4/3 of
  // an encoder block at T5's usual shapes (C 512, F 2048, H 8, T 128: 12288 / 9216 floats). decode() does not
  // checkpoint the decoder's blocks, so they keep all of it with gradient checkpointing on too.
  memoryBlocks: (c) => ({ blocks: c.numLayers + (4 / 3) * c.numDecoderLayers, uncheckpointed: (4 / 3) * c.numDecoderLayers }),
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: () => ({ outputEmbedding: 'lm_head' }),
  tied: (c): Record<string, string> => (c.tieWordEmbeddings ? { 'lm_head.weight': 'shared.weight' } : {}),
  basePrefix: '',
  initParam(name, shape, c, rng) {
    // T5PreTrainedModel._init_weights, every std scaled by initializer_factor.
    const f = c.initializerFactor;
    const n = shape.reduce((a, b) => a * b, 1);
    if (/layer_norm\.weight$/.test(name)) return new Float32Array(n).fill(f);
    let std = f;
    if (/\.wi(_[01])?\.weight$/.test(name)) std = f * c.dModel ** -0.5;
    else if (/\.wo\.weight$/.test(name)) std = f * c.dFf ** -0.5;
    else if (/\.q\.weight$/.test(name)) std = f * (c.dModel * c.dKv) ** -0.5;
    else if (/\.[kv]\.weight$/.test(name) || name.endsWith('relative_attention_bias.weight')) std = f * c.dModel ** -0.5;
    else if (/\.o\.weight$/.test(name)) std = f * (c.numHeads * c.dKv) ** -0.5;
    return rng.fillNormal(n, std);
  },
  hidden,
  head,
  seq2seq: { start: startDecoding },
};

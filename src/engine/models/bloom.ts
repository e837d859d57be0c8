/**
 * BLOOM (BloomForCausalLM, BloomForSequenceClassification), following transformers 4.43's modeling_bloom.py.
 * Parameter names are the checkpoint keys; every projection is an nn.Linear ([out, in]).
 *
 * What sets it apart:
 * - no position embeddings: ALiBi adds slope_h * (key position) to every score of head h, with the key's
 *   position counted from the attention mask ((cumsum(mask) - 1) * mask), so padding does not shift it;
 * - word_embeddings_layernorm normalises the token embeddings (prompt-tuning rows too) before the first block;
 * - the fused query_key_value has the same [heads, 3, head_dim] row order as GPT-NeoX's;
 * - apply_residual_connection_post_layernorm: the residual is the normalised input instead of the input;
 * - BloomGelu is the tanh approximation (its constant rounded to 0.79788456, a 1e-9 relative difference).
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, attentionBias, block, cachedBlock, cachedLength, decodeBias, dropout, embedding, layerNorm, linear, mergeHeads,
  prefixLength, prefixMask, prependPrefix, splitHeads, withCache, withPrefix, type Ctx, type LayerCache,
} from './layers';
import { maskPositions, poolLastToken } from './pooling';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

export interface BloomConfig extends ArchConfig {
  layerNormEps: number;
  postLayerNormResidual: boolean;
  hiddenDropout: number;
  attentionDropout: number;
  initializerRange: number;
}

function parseConfig(raw: Record<string, unknown>): BloomConfig {
  // BloomConfig's attribute_map: n_layer / n_head; "n_embed" is the legacy name of hidden_size.
  const hidden = requiredInt(raw, 'hidden_size', 'n_embed');
  const heads = requiredInt(raw, 'n_head', 'num_attention_heads');
  if (hidden % heads !== 0) throw new TypeError(`config.json: hidden_size ${hidden} is not divisible by n_head ${heads}`);
  return {
    modelType: 'bloom',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'n_layer', 'num_hidden_layers'),
    numHeads: heads,
    // ALiBi has no position table; BLOOM was trained on 2048-token sequences (seq_length in some configs).
    maxPositions: field(raw, 'seq_length', 2048),
    layerNormEps: field(raw, 'layer_norm_epsilon', 1e-5),
    postLayerNormResidual: field(raw, 'apply_residual_connection_post_layernorm', false),
    hiddenDropout: field(raw, 'hidden_dropout', 0),
    attentionDropout: field(raw, 'attention_dropout', 0),
    initializerRange: field(raw, 'initializer_range', 0.02),
    numLabels: numLabelsOf(raw),
    // BloomConfig's defaults: pad 3, bos 1, eos 2.
    padTokenId: raw.pad_token_id === undefined ? 3 : optionalId(raw, 'pad_token_id'),
    bosTokenId: raw.bos_token_id === undefined ? 1 : optionalId(raw, 'bos_token_id'),
    eosTokenId: raw.eos_token_id === undefined ? 2 : optionalId(raw, 'eos_token_id'),
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
  };
}

function className(_c: BloomConfig, task: TaskType): string {
  return task === 'SEQ_CLS' ? 'BloomForSequenceClassification' : 'BloomForCausalLM';
}

function modules(c: BloomConfig, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task));
  t.add('transformer', 'BloomModel');
  t.embedding('transformer.word_embeddings', c.vocabSize, C);
  t.layerNorm('transformer.word_embeddings_layernorm', C);
  t.add('transformer.h', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    t.add(p, 'BloomBlock');
    t.layerNorm(`${p}.input_layernorm`, C);
    t.add(`${p}.self_attention`, 'BloomAttention');
    t.linear(`${p}.self_attention.query_key_value`, C, 3 * C);
    t.linear(`${p}.self_attention.dense`, C, C);
    t.add(`${p}.self_attention.attention_dropout`, 'Dropout');
    t.layerNorm(`${p}.post_attention_layernorm`, C);
    t.add(`${p}.mlp`, 'BloomMLP');
    t.linear(`${p}.mlp.dense_h_to_4h`, C, 4 * C);
    t.add(`${p}.mlp.gelu_impl`, 'BloomGelu');
    t.linear(`${p}.mlp.dense_4h_to_h`, 4 * C, C);
  }
  t.layerNorm('transformer.ln_f', C);
  if (task === 'SEQ_CLS') t.linear('score', C, c.numLabels, false);
  else t.linear('lm_head', C, c.vocabSize, false);
  return t.rows;
}

/**
 * build_alibi_tensor's slopes, in float32: for n heads, 2^(-8 / p * (h + 1)) over the largest power of two
 * p <= n, then the odd-numbered slopes of 2p for the heads beyond p.
 */
export function alibiSlopes(heads: number): Float32Array {
  const p = 2 ** Math.floor(Math.log2(heads));
  const base = Math.fround(2 ** -(2 ** -(Math.log2(p) - 3)));
  const out = new Float32Array(heads);
  for (let h = 0; h < p; h++) out[h] = Math.fround(base ** (h + 1));
  if (p !== heads) {
    const extra = Math.fround(2 ** -(2 ** -(Math.log2(2 * p) - 3)));
    for (let j = 0; j < Math.min(p, heads - p); j++) out[p + j] = Math.fround(extra ** (2 * j + 1));
  }
  return out;
}

/** ALiBi [B, H, 1, K]: slope_h * position of key j, positions from the mask [B, K] over every key. */
export function alibi(c: BloomConfig, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [B, K] = mask.shape;
    const pos = maskPositions(mask, 0, 0).toFloat().reshape([B!, 1, 1, K!]); // padded keys at 0
    return tf.mul(tf.tensor4d(alibiSlopes(c.numHeads), [1, c.numHeads, 1, 1]), pos);
  });
}

/**
 * One block: attention then MLP, each added to the residual (the block's input, or with
 * apply_residual_connection_post_layernorm its normalised input). `bias` holds the masks plus ALiBi.
 */
function bloomBlock(c: BloomConfig, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor, cache?: LayerCache): tf.Tensor {
  const p = `transformer.h.${i}`;
  const hd = c.hiddenSize / c.numHeads;
  // attention
  const h = layerNorm(ctx, `${p}.input_layernorm`, x, c.layerNormEps); // [B, S, C]
  const qkv = splitHeads(linear(ctx, `${p}.self_attention.query_key_value`, h), c.numHeads, 3 * hd); // [B, H, S, 3hd]
  const [q, kNew, vNew] = tf.split(qkv, 3, -1); // [B, H, S, hd] each
  const { k, v } = cache ? withCache(cache, kNew, vNew) : withPrefix(ctx, i, kNew, vNew); // [B, H, L+S, hd]
  // ALiBi's bias differs per head, so decoding takes the plain product (attendCached broadcasts one bias row).
  const att = attend(ctx, q, k, v, bias, 1 / Math.sqrt(hd), cache ? 0 : c.attentionDropout); // [B, H, S, hd]
  const a = dropout(ctx, linear(ctx, `${p}.self_attention.dense`, mergeHeads(att)), c.hiddenDropout);
  const y = tf.add(a, c.postLayerNormResidual ? h : x);
  // mlp
  const h2 = layerNorm(ctx, `${p}.post_attention_layernorm`, y, c.layerNormEps);
  const m = linear(ctx, `${p}.mlp.dense_4h_to_h`, activation('gelu_new', linear(ctx, `${p}.mlp.dense_h_to_4h`, h2)));
  return tf.add(dropout(ctx, m, c.hiddenDropout), c.postLayerNormResidual ? h2 : y);
}

/** Word embeddings (prompt-tuning rows in front) through word_embeddings_layernorm: [B, S, C]. */
function embed(c: BloomConfig, ctx: Ctx, inputIds: tf.Tensor, withPrompt: boolean): tf.Tensor {
  let x = embedding(ctx, 'transformer.word_embeddings', inputIds);
  if (withPrompt) x = prependPrefix(ctx, x);
  return layerNorm(ctx, 'transformer.word_embeddings_layernorm', x, c.layerNormEps);
}

function hidden(c: BloomConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  let x = embed(c, ctx, input.inputIds, true); // [B, S, C], S = P + T
  const S = x.shape[1]!;
  const past = prefixLength(ctx); // prefix tuning's keys: PEFT's mask has ones for them in front
  const mask = prefixMask(ctx, input.attentionMask, B, T) ?? tf.ones([B, S]); // [B, S]
  const keys = past > 0 ? tf.concat([tf.ones([B, past]), mask.toFloat()], 1) : mask; // [B, past+S]
  const bias = tf.add(attentionBias(mask, B, S, true, past), alibi(c, keys)); // [B, H, S, past+S]
  for (let i = 0; i < c.numLayers; i++) x = block(ctx, `transformer.h.${i}`, x, [bias], (h, [b]) => bloomBlock(c, ctx, i, h, b));
  return layerNorm(ctx, 'transformer.ln_f', x, c.layerNormEps); // [B, S, C]
}

/** Decoding step (DecoderSpec.step): S new tokens over L cached ones (one unpadded row: keys at 0..L+S-1). */
function step(c: BloomConfig, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor {
  let x = embed(c, ctx, inputIds, past === 0); // [1, S, C]
  const S = x.shape[1]!;
  const L = cachedLength(ctx, caches);
  const bias = tf.add(decodeBias(L, S), alibi(c, tf.ones([1, L + S]))); // [1, H, S, L+S]
  for (let i = 0; i < c.numLayers; i++) {
    const h = x;
    x = cachedBlock(caches[i], () => bloomBlock(c, ctx, i, h, bias, caches[i]));
  }
  return layerNorm(ctx, 'transformer.ln_f', x, c.layerNormEps);
}

function head(c: BloomConfig, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor {
  if (task === 'CAUSAL_LM') return linear(ctx, 'lm_head', x); // lm_head.weight is word_embeddings' when tied
  return linear(ctx, 'score', poolLastToken(c.padTokenId, className(c, task), ctx, input, x)); // [B, num_labels]
}

export const bloom: ArchitectureSpec<BloomConfig> = {
  id: 'bloom',
  modelTypes: ['bloom'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for bloom.
  peftDefaults: () => ({
    lora: ['query_key_value'], adalora: ['query_key_value'], ia3: ['query_key_value', 'mlp.dense_4h_to_h'], ia3Feedforward: ['mlp.dense_4h_to_h'],
  }),
  roles: { attention: /\.self_attention\./, mlp: /\.mlp\./, head: /^(lm_head|score)$/ },
  ffnSize: (c) => 4 * c.hiddenSize,
  mlpKind: 'plain',
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: (_c, task) => (task === 'SEQ_CLS' ? { classifier: 'score' } : { outputEmbedding: 'lm_head' }),
  tied: (c, task): Record<string, string> =>
    task === 'CAUSAL_LM' && c.tieWordEmbeddings ? { 'lm_head.weight': 'transformer.word_embeddings.weight' } : {},
  basePrefix: 'transformer.',
  initParam(name, shape, c, rng) {
    // BloomPreTrainedModel._init_weights: Linear / Embedding ~ N(0, initializer_range), biases 0, LayerNorm 1 / 0.
    const n = shape.reduce((a, b) => a * b, 1);
    if (/(layernorm|ln_f)\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    return rng.fillNormal(n, c.initializerRange);
  },
  hidden,
  head,
  decoder: { maxLength: (c) => c.maxPositions, step },
};

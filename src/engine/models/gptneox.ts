/**
 * GPT-NeoX (Pythia; model_type "gpt_neox": GPTNeoXForCausalLM, GPTNeoXForSequenceClassification), following
 * transformers 4.43's modeling_gpt_neox.py (eager attention). Parameter names are the checkpoint keys; every
 * projection is an nn.Linear ([out, in]).
 *
 * What sets it apart:
 * - one fused query_key_value whose rows are in [heads, 3, head_dim] order (each head's q, k, v side by side;
 *   GPT-2's c_attn is [3, heads, head_dim]);
 * - partial rotary: only the first rotary_ndims = int(head_dim * rotary_pct) dims of each q / k head are rotated
 *   (rotate_half over those dims), the rest pass through; positions 0..L-1 whatever the padding;
 * - parallel residual (use_parallel_residual, Pythia's default): x + attn(ln1(x)) + mlp(ln2(x)), both norms read
 *   the same x; otherwise the sequential x' = x + attn(ln1(x)), x' + mlp(ln2(x'));
 * - an untied output embedding `embed_out` (tie_word_embeddings false, as Pythia ships).
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, attendCached, attentionBias, block, cachedBlock, cachedLength, cachedTensor, decodeBias, dropout, embedding,
  layerNorm, linear, mergeHeads, prefixLength, prefixMask, prependPrefix, splitHeads, withCache, withPrefix, type Ctx, type LayerCache,
} from './layers';
import * as ops from '../ops/fused';
import { describeValue } from '../quote';
import { poolLastToken } from './pooling';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

export interface GPTNeoXConfig extends ArchConfig {
  headDim: number;
  /** Rotated dims of each head: int(head_dim * rotary_pct). */
  rotaryDims: number;
  rotaryBase: number;
  intermediateSize: number;
  hiddenAct: string;
  layerNormEps: number;
  useParallelResidual: boolean;
  /** Biases on query_key_value and dense (attention_bias). */
  attentionBias: boolean;
  hiddenDropout: number;
  attentionDropout: number;
  initializerRange: number;
}

function parseConfig(raw: Record<string, unknown>): GPTNeoXConfig {
  const hidden = requiredInt(raw, 'hidden_size');
  const heads = requiredInt(raw, 'num_attention_heads');
  if (hidden % heads !== 0) throw new TypeError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  const headDim = hidden / heads;
  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null) {
    throw new TypeError(`config.json: rope_scaling ${describeValue(raw.rope_scaling)} is not supported for gpt_neox (only null)`);
  }
  const pct = field(raw, 'rotary_pct', 0.25);
  const rotaryDims = Math.floor(headDim * pct);
  if (rotaryDims % 2 !== 0) throw new TypeError(`config.json: rotary_pct ${pct} gives ${rotaryDims} rotary dims per head; RoPE needs an even number`);
  return {
    modelType: 'gpt_neox',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'num_hidden_layers'),
    numHeads: heads,
    headDim,
    rotaryDims,
    // transformers 4.43 saves rotary_emb_base; later releases name it rope_theta.
    rotaryBase: field(raw, 'rotary_emb_base', field(raw, 'rope_theta', 10000)),
    maxPositions: field(raw, 'max_position_embeddings', 2048),
    intermediateSize: requiredInt(raw, 'intermediate_size'),
    hiddenAct: field(raw, 'hidden_act', 'gelu'),
    layerNormEps: field(raw, 'layer_norm_eps', 1e-5),
    useParallelResidual: field(raw, 'use_parallel_residual', true),
    attentionBias: field(raw, 'attention_bias', true),
    hiddenDropout: field(raw, 'hidden_dropout', 0),
    attentionDropout: field(raw, 'attention_dropout', 0),
    initializerRange: field(raw, 'initializer_range', 0.02),
    numLabels: numLabelsOf(raw),
    padTokenId: optionalId(raw, 'pad_token_id'),
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: optionalId(raw, 'eos_token_id'),
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', false),
  };
}

function className(_c: GPTNeoXConfig, task: TaskType): string {
  return task === 'SEQ_CLS' ? 'GPTNeoXForSequenceClassification' : 'GPTNeoXForCausalLM';
}

/** Class names transformers' ACT2FN gives the activation module. */
function activationClass(act: string): string {
  const names: Record<string, string> = {
    gelu: 'GELUActivation', gelu_new: 'NewGELUActivation', gelu_fast: 'FastGELUActivation', gelu_pytorch_tanh: 'PytorchGELUTanh',
    relu: 'ReLU', silu: 'SiLU', swish: 'SiLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

function modules(c: GPTNeoXConfig, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task));
  t.add('gpt_neox', 'GPTNeoXModel');
  t.embedding('gpt_neox.embed_in', c.vocabSize, C);
  t.add('gpt_neox.emb_dropout', 'Dropout');
  t.add('gpt_neox.layers', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `gpt_neox.layers.${i}`;
    t.add(p, 'GPTNeoXLayer');
    t.layerNorm(`${p}.input_layernorm`, C);
    t.layerNorm(`${p}.post_attention_layernorm`, C);
    t.add(`${p}.post_attention_dropout`, 'Dropout');
    t.add(`${p}.post_mlp_dropout`, 'Dropout');
    t.add(`${p}.attention`, 'GPTNeoXAttention');
    t.add(`${p}.attention.rotary_emb`, 'GPTNeoXRotaryEmbedding');
    t.linear(`${p}.attention.query_key_value`, C, 3 * C, c.attentionBias);
    t.linear(`${p}.attention.dense`, C, C, c.attentionBias);
    t.add(`${p}.attention.attention_dropout`, 'Dropout');
    t.add(`${p}.mlp`, 'GPTNeoXMLP');
    t.linear(`${p}.mlp.dense_h_to_4h`, C, c.intermediateSize);
    t.linear(`${p}.mlp.dense_4h_to_h`, c.intermediateSize, C);
    t.add(`${p}.mlp.act`, activationClass(c.hiddenAct));
  }
  t.layerNorm('gpt_neox.final_layer_norm', C);
  if (task === 'SEQ_CLS') t.linear('score', C, c.numLabels, false);
  else t.linear('embed_out', C, c.vocabSize, false);
  return t.rows;
}

/**
 * cos / sin [S, R] over the R rotary dims for positions start..start+S-1, as GPTNeoXRotaryEmbedding computes
 * them in float32: inv_freq = 1 / base^(2i / R), angle = position * inv_freq, each frequency over both halves.
 * Cached per shape; decoding steps pass cache = false (one entry per position would only grow the cache).
 */
function ropeTables(c: GPTNeoXConfig, seq: number, start: number, cache = true): { cos: tf.Tensor; sin: tf.Tensor } {
  const R = c.rotaryDims;
  const make = (which: 'cos' | 'sin') => () => {
    const half = R / 2;
    const out = new Float32Array(seq * R);
    for (let i = 0; i < half; i++) {
      const inv = Math.fround(1 / Math.fround(Math.pow(c.rotaryBase, Math.fround((2 * i) / R))));
      for (let s = 0; s < seq; s++) {
        const angle = Math.fround((start + s) * inv);
        out[s * R + i] = out[s * R + half + i] = which === 'cos' ? Math.cos(angle) : Math.sin(angle);
      }
    }
    return tf.tensor2d(out, [seq, R]);
  };
  if (!cache) return { cos: make('cos')(), sin: make('sin')() };
  const key = `neox-rope:${R}:${c.rotaryBase}:${start}:${seq}`;
  return { cos: cachedTensor(`${key}:cos`, make('cos')), sin: cachedTensor(`${key}:sin`, make('sin')) };
}

/** Rotates the first rotaryDims of each head of x [B, H, S, D]; the other dims pass through. */
function partialRope(c: GPTNeoXConfig, x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const R = c.rotaryDims;
  if (R === 0) return x;
  if (R === c.headDim) return ops.rope(x, cos, sin);
  const [rot, pass] = tf.split(x, [R, c.headDim - R], -1);
  return tf.concat([ops.rope(rot, cos, sin), pass], -1);
}

/**
 * One layer: attention and MLP added to the residual in parallel (or in sequence). With a cache, attends over
 * past + new keys (cached after RoPE); without, over prefix tuning's prefix (if any, never rotated) + its own.
 */
function neoxLayer(
  c: GPTNeoXConfig, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, cache?: LayerCache,
): tf.Tensor {
  const p = `gpt_neox.layers.${i}`;
  const hd = c.headDim;
  // attention: the fused projection is [B, S, H * (q | k | v)], so split heads first, then q, k, v
  const h = layerNorm(ctx, `${p}.input_layernorm`, x, c.layerNormEps);
  const qkv = splitHeads(linear(ctx, `${p}.attention.query_key_value`, h), c.numHeads, 3 * hd); // [B, H, S, 3hd]
  const [qRaw, kRaw, vNew] = tf.split(qkv, 3, -1); // [B, H, S, hd] each
  const q = partialRope(c, qRaw, cos, sin);
  const kNew = partialRope(c, kRaw, cos, sin);
  const { k, v } = cache ? withCache(cache, kNew, vNew) : withPrefix(ctx, i, kNew, vNew); // [B, H, L+S, hd]
  const scale = 1 / Math.sqrt(hd);
  const att = cache ? attendCached(ctx, q, k, v, bias, scale) : attend(ctx, q, k, v, bias, scale, c.attentionDropout);
  const a = dropout(ctx, linear(ctx, `${p}.attention.dense`, mergeHeads(att)), c.hiddenDropout); // [B, S, C]
  // mlp: dense_4h_to_h(act(dense_h_to_4h(ln2(.)))) on x (parallel) or on x + a (sequential)
  const mlp = (y: tf.Tensor) => {
    const h2 = layerNorm(ctx, `${p}.post_attention_layernorm`, y, c.layerNormEps);
    const m = linear(ctx, `${p}.mlp.dense_4h_to_h`, activation(c.hiddenAct, linear(ctx, `${p}.mlp.dense_h_to_4h`, h2)));
    return dropout(ctx, m, c.hiddenDropout);
  };
  if (c.useParallelResidual) return tf.add(tf.add(mlp(x), a), x);
  const y = tf.add(a, x);
  return tf.add(mlp(y), y);
}

function hidden(c: GPTNeoXConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  let x = prependPrefix(ctx, embedding(ctx, 'gpt_neox.embed_in', input.inputIds)); // [B, S, C], S = P + T
  x = dropout(ctx, x, c.hiddenDropout);
  const S = x.shape[1]!;
  // Prefix tuning's V keys come first: position_ids = arange(V, V + S) drives RoPE.
  const past = prefixLength(ctx);
  const { cos, sin } = ropeTables(c, S, past); // positions past..past+S-1, padding or not
  const bias = attentionBias(prefixMask(ctx, input.attentionMask, B, T), B, S, true, past); // [B|1, 1, S, past+S]
  for (let i = 0; i < c.numLayers; i++) {
    x = block(ctx, `gpt_neox.layers.${i}`, x, [bias, cos, sin], (h, [b, co, si]) => neoxLayer(c, ctx, i, h, b, co, si));
  }
  return layerNorm(ctx, 'gpt_neox.final_layer_norm', x, c.layerNormEps); // [B, S, C]
}

/** Decoding step (DecoderSpec.step): S new tokens at positions L..L+S-1 over L cached ones. */
function step(c: GPTNeoXConfig, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor {
  let x = embedding(ctx, 'gpt_neox.embed_in', inputIds); // [1, S, C]
  if (past === 0) x = prependPrefix(ctx, x); // virtual tokens open the cache
  const S = x.shape[1]!;
  const L = cachedLength(ctx, caches);
  const { cos, sin } = ropeTables(c, S, L, past === 0);
  const bias = decodeBias(L, S); // [1, 1, S, L+S]
  for (let i = 0; i < c.numLayers; i++) {
    const h = x;
    x = cachedBlock(caches[i], () => neoxLayer(c, ctx, i, h, bias, cos, sin, caches[i]));
  }
  return layerNorm(ctx, 'gpt_neox.final_layer_norm', x, c.layerNormEps);
}

function head(c: GPTNeoXConfig, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor {
  if (task === 'CAUSAL_LM') return linear(ctx, 'embed_out', x);
  return linear(ctx, 'score', poolLastToken(c.padTokenId, className(c, task), ctx, input, x)); // [B, num_labels]
}

export const gptneox: ArchitectureSpec<GPTNeoXConfig> = {
  id: 'gpt_neox',
  modelTypes: ['gpt_neox'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for gpt_neox.
  peftDefaults: () => ({
    lora: ['query_key_value'], adalora: ['query_key_value'], ia3: ['query_key_value', 'dense_4h_to_h'], ia3Feedforward: ['dense_4h_to_h'],
  }),
  roles: { attention: /\.attention\./, mlp: /\.mlp\./, head: /^(embed_out|score)$/ },
  ffnSize: (c) => c.intermediateSize,
  mlpKind: 'plain',
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: (_c, task) => (task === 'SEQ_CLS' ? { classifier: 'score' } : { outputEmbedding: 'embed_out' }),
  tied: (c, task): Record<string, string> =>
    task === 'CAUSAL_LM' && c.tieWordEmbeddings ? { 'embed_out.weight': 'gpt_neox.embed_in.weight' } : {},
  basePrefix: 'gpt_neox.',
  initParam(name, shape, c, rng) {
    // GPTNeoXPreTrainedModel._init_weights: Linear / Embedding ~ N(0, initializer_range), biases 0, LayerNorm 1 / 0.
    const n = shape.reduce((a, b) => a * b, 1);
    if (/(layernorm|layer_norm)\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    return rng.fillNormal(n, c.initializerRange);
  },
  hidden,
  head,
  decoder: { maxLength: (c) => c.maxPositions, step },
};

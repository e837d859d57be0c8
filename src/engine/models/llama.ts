/**
 * LLaMA-family decoders (model_type "llama", "qwen2", "mistral"): *ForCausalLM and *ForSequenceClassification,
 * following transformers 4.43's modeling_llama.py / modeling_qwen2.py / modeling_mistral.py (eager attention).
 * Parameter names are the checkpoint keys; every projection is an nn.Linear ([out, in]).
 *
 * The three types share one forward; they differ only in class names, biases and where rotary_emb sits:
 * - llama:   q/k/v/o bias = attention_bias, MLP bias = mlp_bias; LlamaModel also owns a `rotary_emb` (4.43
 *            computes cos/sin once in the model; each LlamaAttention still keeps its own legacy `rotary_emb`);
 * - qwen2:   q/k/v always have a bias, o_proj never; `rotary_emb` only inside each attention;
 * - mistral: no biases; `rotary_emb` only inside each attention; sliding-window causal mask.
 */
import * as tf from '@tensorflow/tfjs';
import {
  attend, attendCached, attentionBias, block, cachedBlock, cachedLength, cachedTensor, decodeBias, embedding, gated, linear,
  MASK_VALUE, mergeHeads, prefixLength, prefixMask, prependPrefix, rmsNorm, splitHeads, withCache, withPrefix, type Ctx,
  type LayerCache,
} from './layers';
import * as ops from '../ops/fused';
import { describeValue, quoteValue } from '../quote';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

export interface LlamaConfig extends ArchConfig {
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  hiddenAct: string;
  ropeTheta: number;
  /** Parsed rope_scaling (null = plain RoPE). */
  ropeScaling: RopeScaling | null;
  /** Bias on q_proj/k_proj/v_proj. */
  qkvBias: boolean;
  /** Bias on o_proj. */
  oBias: boolean;
  /** Bias on gate_proj/up_proj/down_proj. */
  mlpBias: boolean;
  attentionDropout: number;
  initializerRange: number;
  /** Causal sliding window (Mistral, Qwen2 with use_sliding_window), or null for full causal attention. */
  slidingWindow: number | null;
}

export type RopeScaling =
  | { type: 'linear'; factor: number }
  /** "dynamic" NTK scaling only changes the frequencies past max_position_embeddings. */
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** transformers class-name prefix per model_type. */
const PREFIX: Record<string, string> = { llama: 'Llama', qwen2: 'Qwen2', mistral: 'Mistral' };

function parseRopeScaling(raw: Record<string, unknown>): RopeScaling | null {
  const rs = raw.rope_scaling;
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== 'object' || Array.isArray(rs)) {
    throw new TypeError(`config.json: rope_scaling must be an object or null, got ${describeValue(rs)}`);
  }
  const r = rs as Record<string, unknown>;
  // transformers reads "rope_type", falling back to the legacy "type".
  const rawType = r.rope_type ?? r.type ?? 'default';
  if (typeof rawType !== 'string') throw new TypeError(`config.json: rope_scaling.rope_type must be a string, got ${describeValue(rawType)}`);
  const type = rawType;
  if (type === 'default') return null;
  const factor = field(r, 'factor', 1, 'config.json rope_scaling');
  if (type === 'linear' || type === 'dynamic') return { type, factor };
  if (type === 'llama3') {
    return {
      type,
      factor,
      lowFreqFactor: field(r, 'low_freq_factor', 1, 'config.json rope_scaling'),
      highFreqFactor: field(r, 'high_freq_factor', 4, 'config.json rope_scaling'),
      originalMaxPositions: field(r, 'original_max_position_embeddings', 8192, 'config.json rope_scaling'),
    };
  }
  throw new TypeError(
    `config.json: rope_scaling type ${quoteValue(type)} is not supported (supported: null, "default", "linear", "dynamic", "llama3")`,
  );
}

function parseConfig(raw: Record<string, unknown>): LlamaConfig {
  const modelType = String(raw.model_type);
  if (!(modelType in PREFIX)) throw new TypeError(`config.json: model_type "${modelType}" is not a LLaMA-family type`);
  const hidden = requiredInt(raw, 'hidden_size');
  const heads = requiredInt(raw, 'num_attention_heads');
  const kvHeads = raw.num_key_value_heads == null ? heads : requiredInt(raw, 'num_key_value_heads');
  if (heads % kvHeads !== 0) {
    throw new TypeError(`config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  }
  const headDim = raw.head_dim == null ? hidden / heads : requiredInt(raw, 'head_dim');
  if (!Number.isInteger(headDim)) {
    throw new TypeError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  if (headDim % 2 !== 0) throw new TypeError(`config.json: head dimension ${headDim} must be even for RoPE`);
  const attentionBias = field(raw, 'attention_bias', false);
  let slidingWindow: number | null = null;
  if (modelType === 'mistral') slidingWindow = optionalId(raw, 'sliding_window', 'an integer (the window in tokens) or null');
  if (modelType === 'qwen2' && field(raw, 'use_sliding_window', false)) slidingWindow = optionalId(raw, 'sliding_window', 'an integer (the window in tokens) or null');
  return {
    modelType,
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: requiredInt(raw, 'intermediate_size'),
    maxPositions: field(raw, 'max_position_embeddings', 2048),
    rmsNormEps: field(raw, 'rms_norm_eps', 1e-6),
    hiddenAct: field(raw, 'hidden_act', 'silu'),
    ropeTheta: field(raw, 'rope_theta', 10000),
    ropeScaling: parseRopeScaling(raw),
    // Qwen2 hard-codes bias=True on q/k/v and bias=False on o_proj.
    qkvBias: modelType === 'qwen2' ? true : attentionBias,
    oBias: modelType === 'qwen2' ? false : attentionBias,
    mlpBias: field(raw, 'mlp_bias', false),
    attentionDropout: field(raw, 'attention_dropout', 0),
    initializerRange: field(raw, 'initializer_range', 0.02),
    slidingWindow,
    numLabels: numLabelsOf(raw),
    padTokenId: optionalId(raw, 'pad_token_id'),
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: optionalId(raw, 'eos_token_id'),
    // LlamaConfig / Qwen2Config / MistralConfig all default to untied; small Qwen2 / SmolLM set it to true.
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', false),
  };
}

function className(c: LlamaConfig, task: TaskType): string {
  return `${PREFIX[c.modelType]}${task === 'SEQ_CLS' ? 'ForSequenceClassification' : 'ForCausalLM'}`;
}

/** Class names transformers' ACT2FN gives the activation module. */
function activationClass(act: string): string {
  const names: Record<string, string> = {
    silu: 'SiLU', swish: 'SiLU', gelu: 'GELUActivation', gelu_new: 'NewGELUActivation',
    gelu_pytorch_tanh: 'PytorchGELUTanh', relu: 'ReLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

function modules(c: LlamaConfig, task: TaskType) {
  const P = PREFIX[c.modelType];
  const C = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const t = new TreeBuilder();
  t.add('', className(c, task));
  t.add('model', `${P}Model`);
  t.embedding('model.embed_tokens', c.vocabSize, C);
  t.add('model.layers', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    t.add(p, `${P}DecoderLayer`);
    t.add(`${p}.self_attn`, `${P}Attention`);
    t.linear(`${p}.self_attn.q_proj`, C, qDim, c.qkvBias);
    t.linear(`${p}.self_attn.k_proj`, C, kvDim, c.qkvBias);
    t.linear(`${p}.self_attn.v_proj`, C, kvDim, c.qkvBias);
    t.linear(`${p}.self_attn.o_proj`, qDim, C, c.oBias);
    t.add(`${p}.self_attn.rotary_emb`, `${P}RotaryEmbedding`);
    t.add(`${p}.mlp`, `${P}MLP`);
    t.linear(`${p}.mlp.gate_proj`, C, c.intermediateSize, c.mlpBias);
    t.linear(`${p}.mlp.up_proj`, C, c.intermediateSize, c.mlpBias);
    t.linear(`${p}.mlp.down_proj`, c.intermediateSize, C, c.mlpBias);
    t.add(`${p}.mlp.act_fn`, activationClass(c.hiddenAct));
    t.add(`${p}.input_layernorm`, `${P}RMSNorm`, { weight: [C] });
    t.add(`${p}.post_attention_layernorm`, `${P}RMSNorm`, { weight: [C] });
  }
  t.add('model.norm', `${P}RMSNorm`, { weight: [C] });
  // transformers 4.43 gives only LlamaModel a model-level rotary_emb (Qwen2/Mistral got theirs in 4.45).
  if (c.modelType === 'llama') t.add('model.rotary_emb', `${P}RotaryEmbedding`);
  if (task === 'SEQ_CLS') t.linear('score', C, c.numLabels, false);
  else t.linear('lm_head', C, c.vocabSize, false);
  return t.rows;
}

/**
 * RoPE inverse frequencies as transformers computes them in float32: 1 / theta^(2i/d), then rope_scaling.
 * Math.fround after each step reproduces torch's float32 rounding, so angles for long sequences agree too.
 */
function inverseFrequencies(c: LlamaConfig, seq: number): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    inv[i] = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, Math.fround((2 * i) / c.headDim))));
  }
  const rs = c.ropeScaling;
  if (!rs) return inv;
  if (rs.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = Math.fround(inv[i] / rs.factor);
  } else if (rs.type === 'dynamic') {
    if (seq > c.maxPositions) {
      throw new Error(
        `rope_scaling "dynamic" past max_position_embeddings (${seq} > ${c.maxPositions} tokens) is not supported`,
      );
    }
  } else {
    // _compute_llama3_parameters: keep high frequencies, divide low ones by factor, blend in between.
    const lowWavelen = rs.originalMaxPositions / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositions / rs.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) inv[i] = Math.fround(f / rs.factor);
      else {
        const smooth = (rs.originalMaxPositions / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        inv[i] = Math.fround(((1 - smooth) * f) / rs.factor + smooth * f);
      }
    }
  }
  return inv;
}

/**
 * cos / sin tables [S, D] for positions start..start+S-1, each frequency repeated over both halves (HF's
 * cat(freqs, freqs)); built once per shape and rotary setting and cached. Decoding steps pass cache = false:
 * one entry per position would only grow the cache.
 */
function ropeTables(c: LlamaConfig, seq: number, start = 0, cache = true): { cos: tf.Tensor; sin: tf.Tensor } {
  const key = `rope:${c.headDim}:${c.ropeTheta}:${JSON.stringify(c.ropeScaling)}:${c.maxPositions}:${start}:${seq}`;
  const make = (which: 'cos' | 'sin') => () => {
    const D = c.headDim;
    const half = D / 2;
    const inv = inverseFrequencies(c, start + seq);
    const out = new Float32Array(seq * D);
    for (let s = 0; s < seq; s++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround((start + s) * inv[i]);
        out[s * D + i] = out[s * D + half + i] = which === 'cos' ? Math.cos(angle) : Math.sin(angle);
      }
    }
    return tf.tensor2d(out, [seq, D]);
  };
  if (!cache) return { cos: make('cos')(), sin: make('sin')() };
  return { cos: cachedTensor(`${key}:cos`, make('cos')), sin: cachedTensor(`${key}:sin`, make('sin')) };
}

/** HF rotate_half: cat(-x2, x1) over the last axis halves. */
/** apply_rotary_pos_emb for one of q / k: x * cos + rotate_half(x) * sin, x [B, H, S, D], tables [S, D]. */
function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return ops.rope(x, cos, sin);
}

/**
 * Extra additive bias [1, 1, S, past+S] masking keys at or before (past + i) - window for the query at position
 * past + i (transformers' sliding-window causal mask; `past` = prefix tuning's prefix); null when every sequence
 * fits in the window, as is the case for browser-size inputs.
 */
function slidingWindowBias(c: LlamaConfig, seq: number, past = 0): tf.Tensor | null {
  const w = c.slidingWindow;
  const n = past + seq;
  if (w === null || n <= w) return null;
  if (c.modelType === 'qwen2') {
    // Qwen2 mixes windowed and full layers (max_window_layers); not needed at browser sequence lengths.
    throw new Error(`Qwen2 sliding-window attention (use_sliding_window, ${n} > ${w} tokens) is not supported`);
  }
  return cachedTensor(past ? `window:${w}:${seq}:${past}` : `window:${w}:${seq}`, () => {
    const m = new Float32Array(seq * n);
    for (let i = 0; i < seq; i++) for (let j = 0; j <= past + i - w; j++) m[i * n + j] = MASK_VALUE;
    return tf.tensor4d(m, [1, 1, seq, n]);
  });
}

/** One decoder layer: pre-RMSNorm attention and SwiGLU MLP, each with a residual. With a cache, attends over
 *  past + new keys (keys are cached after RoPE, so cos / sin cover the new positions only); without, over prefix
 *  tuning's prefix (if any, never rotated, as PEFT's cache holds it) + its own. */
function decoderLayer(
  c: LlamaConfig, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, cache?: LayerCache,
): tf.Tensor {
  const p = `model.layers.${i}`;
  // attention
  const h = rmsNorm(ctx, `${p}.input_layernorm`, x, c.rmsNormEps); // [B, S, C]
  const q = applyRope(splitHeads(linear(ctx, `${p}.self_attn.q_proj`, h), c.numHeads, c.headDim), cos, sin); // [B, H, S, D]
  const kNew = applyRope(splitHeads(linear(ctx, `${p}.self_attn.k_proj`, h), c.numKvHeads, c.headDim), cos, sin); // [B, Hkv, S, D]
  const vNew = splitHeads(linear(ctx, `${p}.self_attn.v_proj`, h), c.numKvHeads, c.headDim); // [B, Hkv, S, D]
  // [B, Hkv, L+S, D]: L cached positions when decoding (the prefix among them), else the prefix's (or none)
  const { k, v } = cache ? withCache(cache, kNew, vNew) : withPrefix(ctx, i, kNew, vNew);
  // grouped-query attention: query head h reads kv head h / (H / Hkv), without materialising repeat_kv
  const scale = 1 / Math.sqrt(c.headDim);
  const att = cache ? attendCached(ctx, q, k, v, bias, scale) : attend(ctx, q, k, v, bias, scale, c.attentionDropout); // [B, H, S, D]
  x = tf.add(x, linear(ctx, `${p}.self_attn.o_proj`, mergeHeads(att)));
  // mlp: down(act(gate(x)) * up(x))
  const h2 = rmsNorm(ctx, `${p}.post_attention_layernorm`, x, c.rmsNormEps);
  const gate = linear(ctx, `${p}.mlp.gate_proj`, h2); // [B, S, I]
  const up = linear(ctx, `${p}.mlp.up_proj`, h2); // [B, S, I]
  return tf.add(x, linear(ctx, `${p}.mlp.down_proj`, gated(c.hiddenAct, gate, up)));
}

function hidden(c: LlamaConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  let x = prependPrefix(ctx, embedding(ctx, 'model.embed_tokens', input.inputIds)); // [B, S, C], S = P + T
  const S = x.shape[1]!;
  // Prefix tuning's V keys come first: cache_position = arange(V, V + S) drives RoPE of the real queries / keys.
  const past = prefixLength(ctx);
  const { cos, sin } = ropeTables(c, S, past); // positions past..past+S-1, padding or not
  let bias = attentionBias(prefixMask(ctx, input.attentionMask, B, T), B, S, true, past); // [B|1, 1, S, past+S]
  const window = slidingWindowBias(c, S, past);
  if (window) bias = tf.add(bias, window);
  for (let i = 0; i < c.numLayers; i++) {
    x = block(ctx, `model.layers.${i}`, x, [bias, cos, sin], (h, [b, co, si]) => decoderLayer(c, ctx, i, h, b, co, si));
  }
  return rmsNorm(ctx, 'model.norm', x, c.rmsNormEps); // [B, S, C]
}

/**
 * Most positions a cache may hold: max_position_embeddings (the forward's limit too), or the sliding window,
 * past which the cache would have to drop keys (generate() then falls back to the full forward).
 */
function maxLength(c: LlamaConfig): number {
  return c.slidingWindow === null ? c.maxPositions : Math.min(c.maxPositions, c.slidingWindow);
}

/** Decoding step (DecoderSpec.step): S new tokens at positions L..L+S-1 over L cached ones. */
function step(c: LlamaConfig, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor {
  let x = embedding(ctx, 'model.embed_tokens', inputIds); // [B, S, C]
  if (past === 0) x = prependPrefix(ctx, x); // virtual tokens open the cache: [B, P+T, C]
  const S = x.shape[1]!;
  // What the caches hold: `past`, plus prefix tuning's prefix, which opens them on the first step.
  const L = cachedLength(ctx, caches);
  // The prompt's tables are the forward's (cached); one-token steps build theirs (64 values) each time.
  const { cos, sin } = ropeTables(c, S, L, past === 0); // positions L..L+S-1
  const bias = decodeBias(L, S); // [1, 1, S, L+S]; within the window, so no sliding-window mask
  for (let i = 0; i < c.numLayers; i++) {
    const h = x;
    x = cachedBlock(caches[i], () => decoderLayer(c, ctx, i, h, bias, cos, sin, caches[i]));
  }
  return rmsNorm(ctx, 'model.norm', x, c.rmsNormEps); // [B, S, C]
}

function head(c: LlamaConfig, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor {
  if (task === 'CAUSAL_LM') return linear(ctx, 'lm_head', x); // lm_head.weight is embed_tokens' when tied
  return linear(ctx, 'score', poolLastToken(c, ctx, input, x)); // [B, num_labels]
}

/**
 * *ForSequenceClassification reads each row at (first pad position) - 1 modulo the length: the last
 * non-pad token for right padding, the last token when there is none. Without pad_token_id transformers
 * only accepts batch size 1; with prompt tuning (inputs_embeds, no input_ids) it takes the last position.
 */
function poolLastToken(c: LlamaConfig, ctx: Ctx, input: ForwardInput, x: tf.Tensor): tf.Tensor {
  const [B, S, C] = x.shape;
  if (c.padTokenId === null && B > 1) {
    throw new Error(`${className(c, 'SEQ_CLS')} needs pad_token_id in config.json to batch more than one row`);
  }
  if (ctx.hooks.prefixEmbeds || c.padTokenId === null) {
    return tf.slice(x, [0, S - 1, 0], [B, 1, C]).reshape([B, C]);
  }
  const isPad = tf.equal(input.inputIds, c.padTokenId).toInt();
  const idx = tf.mod(tf.add(tf.argMax(isPad, 1), S - 1), S); // first pad - 1, mod S
  const pick = tf.oneHot(idx.toInt(), S).toFloat().reshape([B, S, 1]);
  return tf.sum(tf.mul(x, pick), 1); // [B, C]
}

export const llama: ArchitectureSpec<LlamaConfig> = {
  id: 'llama',
  modelTypes: ['llama', 'qwen2', 'mistral'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings: the same for llama / qwen2 / mistral except
  // IA3's targets (qwen2 has q_proj, the others k_proj) and AdaLoRA's, which has no mistral entry.
  peftDefaults: (c) => ({
    lora: ['q_proj', 'v_proj'],
    adalora: c.modelType === 'mistral' ? null : ['q_proj', 'v_proj'],
    ia3: c.modelType === 'qwen2' ? ['q_proj', 'v_proj', 'down_proj'] : ['k_proj', 'v_proj', 'down_proj'],
    ia3Feedforward: ['down_proj'],
  }),
  roles: { attention: /\.self_attn\./, mlp: /\.mlp\./, head: /^(lm_head|score)$/ },
  ffnSize: (c) => c.intermediateSize,
  mlpKind: 'gated',
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: (_c, task) => (task === 'SEQ_CLS' ? { classifier: 'score' } : { outputEmbedding: 'lm_head' }),
  tied: (c, task): Record<string, string> =>
    task === 'CAUSAL_LM' && c.tieWordEmbeddings ? { 'lm_head.weight': 'model.embed_tokens.weight' } : {},
  basePrefix: 'model.',
  initParam(name, shape, c, rng) {
    const n = shape.reduce((a, b) => a * b, 1);
    // RMSNorm weights start at one (_init_weights leaves them alone); Linear biases at zero.
    if (/(layernorm|norm)\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    const w = rng.fillNormal(n, c.initializerRange);
    // nn.Embedding(padding_idx=pad_token_id): _init_weights zeroes that row.
    if (name === 'model.embed_tokens.weight' && c.padTokenId !== null && c.padTokenId < shape[0]) {
      w.fill(0, c.padTokenId * shape[1], (c.padTokenId + 1) * shape[1]);
    }
    return w;
  },
  hidden,
  head,
  decoder: { maxLength, step },
};

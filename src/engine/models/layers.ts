/**
 * The building blocks every architecture shares. Each takes a Ctx so that parameters are looked up by
 * their Hugging Face name (with PEFT overrides applied) and so that Linear/Conv1D calls pass through the
 * PEFT hook (LoRA) with the module's full name.
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardHooks, ParamMap } from './types';

/** Added to attention scores of masked keys. transformers uses float32 min; any value that makes exp() 0 agrees. */
export const MASK_VALUE = -1e9;

export interface Ctx {
  get(name: string): tf.Tensor;
  has(name: string): boolean;
  hooks: ForwardHooks;
  training: boolean;
}

export function makeCtx(params: ParamMap, hooks: ForwardHooks = {}, training = false): Ctx {
  const ov = hooks.overrides;
  return {
    get(name) {
      const t = ov?.get(name) ?? params.get(name);
      if (!t) throw new Error(`internal: parameter ${name} is not loaded`);
      return t;
    },
    has: (name) => (ov?.has(name) ?? false) || params.has(name),
    hooks,
    training,
  };
}

/** Applies the PEFT hook (if any) around a base projection. */
function hooked(ctx: Ctx, name: string, x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return ctx.hooks.linear ? ctx.hooks.linear(name, x, base) : base(x);
}

/** Multiplies the last axis of x by a 2-D weight (optionally transposed), keeping leading dims. */
export function matmulLast(x: tf.Tensor, w: tf.Tensor, transposeW: boolean): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const inDim = x.shape[x.shape.length - 1]!;
  const outDim = transposeW ? w.shape[0]! : w.shape[1]!;
  const y = tf.matMul(x.reshape([-1, inDim]), w as tf.Tensor2D, false, transposeW);
  return y.reshape([...lead, outDim]);
}

/** torch.nn.Linear: weight [out, in], y = x W^T + b. */
export function linear(ctx: Ctx, name: string, x: tf.Tensor): tf.Tensor {
  return hooked(ctx, name, x, (inp) => {
    const y = matmulLast(inp, ctx.get(`${name}.weight`), true);
    return ctx.has(`${name}.bias`) ? tf.add(y, ctx.get(`${name}.bias`)) : y;
  });
}

/** transformers' GPT-2 Conv1D: weight [in, out], y = x W + b. */
export function conv1d(ctx: Ctx, name: string, x: tf.Tensor): tf.Tensor {
  return hooked(ctx, name, x, (inp) => tf.add(matmulLast(inp, ctx.get(`${name}.weight`), false), ctx.get(`${name}.bias`)));
}

export function layerNorm(ctx: Ctx, name: string, x: tf.Tensor, eps: number): tf.Tensor {
  const axis = x.shape.length - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, ctx.get(`${name}.weight`)), ctx.get(`${name}.bias`));
}

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(ctx: Ctx, name: string, x: tf.Tensor, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), ctx.get(`${name}.weight`));
}

/** Token embedding lookup. A trainable table uses oneHot x matMul, whose gradient works on every backend
 *  (tf.gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks). */
export function embedding(ctx: Ctx, name: string, ids: tf.Tensor): tf.Tensor {
  const table = ctx.get(`${name}.weight`);
  if (table instanceof tf.Variable && table.trainable) {
    const oh = tf.oneHot(ids.flatten().toInt(), table.shape[0]).toFloat();
    return tf.matMul(oh, table as tf.Tensor2D).reshape([...ids.shape, table.shape[1]]);
  }
  return tf.gather(table, ids.toInt());
}

/** The first `n` rows of a position table (positions 0..n-1). slice has a gradient everywhere. */
export function positions(ctx: Ctx, name: string, n: number): tf.Tensor {
  const table = ctx.get(`${name}.weight`);
  if (n > table.shape[0]) {
    throw new Error(`sequence of ${n} tokens is longer than the model's ${table.shape[0]} positions`);
  }
  return tf.slice(table, [0, 0], [n, table.shape[1]!]);
}

export function dropout(ctx: Ctx, x: tf.Tensor, p: number): tf.Tensor {
  return ctx.training && p > 0 ? tf.dropout(x, p) : x;
}

/** GPT-2's gelu_new (tanh approximation). */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  // x*x*x rather than pow(x, 3): the same value, and the generic pow kernel is several times slower (wasm).
  const inner = tf.mul(c, tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** Exact erf gelu (BERT's "gelu"). */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Activation by transformers' ACT2FN name. */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return geluNew(x);
    case 'gelu':
      return geluErf(x);
    case 'silu':
    case 'swish':
      return silu(x);
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    default:
      throw new Error(`activation "${name}" is not supported`);
  }
}

/**
 * Additive attention bias [B, 1, S, S]: MASK_VALUE where a query may not look at a key (future positions
 * when causal, padding keys from attention_mask), 0 elsewhere. Built from plain arrays, not bandPart,
 * whose gradient is broken in tfjs; it carries no gradient anyway.
 */
export function attentionBias(mask: tf.Tensor | undefined, batch: number, seq: number, causal: boolean): tf.Tensor {
  return tf.tidy(() => {
    let bias: tf.Tensor = tf.zeros([1, 1, seq, seq]);
    if (causal) {
      const c = new Float32Array(seq * seq);
      for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) c[i * seq + j] = MASK_VALUE;
      bias = tf.tensor4d(c, [1, 1, seq, seq]);
    }
    if (mask) {
      const pad = tf.mul(tf.sub(1, mask.toFloat()), MASK_VALUE).reshape([batch, 1, 1, seq]);
      bias = tf.add(bias, pad);
    }
    return bias;
  });
}

/** [B, S, H*D] -> [B, H, S, D] */
export function splitHeads(x: tf.Tensor, heads: number, headDim: number): tf.Tensor {
  const [b, s] = x.shape;
  return x.reshape([b, s, heads, headDim]).transpose([0, 2, 1, 3]);
}

/** [B, H, S, D] -> [B, S, H*D] */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [b, h, s, d] = x.shape;
  return x.transpose([0, 2, 1, 3]).reshape([b, s, h * d]);
}

/** softmax(q k^T * scale + bias) v, with attention dropout on the probabilities. */
export function attend(
  ctx: Ctx,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  bias: tf.Tensor,
  scale: number,
  pDrop: number,
): tf.Tensor {
  const scores = tf.add(tf.mul(tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true), scale), bias);
  const probs = dropout(ctx, tf.softmax(scores, -1), pDrop);
  return tf.matMul(probs as tf.Tensor4D, v as tf.Tensor4D);
}

/** Prepends prompt-tuning embeddings [P, C] to token embeddings [B, T, C]. */
export function prependPrefix(ctx: Ctx, embeds: tf.Tensor): tf.Tensor {
  const prefix = ctx.hooks.prefixEmbeds;
  if (!prefix) return embeds;
  const [b] = embeds.shape;
  const p = prefix.reshape([1, prefix.shape[0]!, prefix.shape[1]!]).tile([b!, 1, 1]);
  return tf.concat([p, embeds], 1);
}

/** Extends an attention mask [B, T] with ones for the P virtual tokens, as PEFT does. */
export function prefixMask(ctx: Ctx, mask: tf.Tensor | undefined, batch: number, seq: number): tf.Tensor | undefined {
  const prefix = ctx.hooks.prefixEmbeds;
  if (!prefix) return mask;
  const m = mask ? mask.toFloat() : tf.ones([batch, seq]);
  return tf.concat([tf.ones([batch, prefix.shape[0]]), m], 1);
}

/**
 * The building blocks every architecture shares. Each takes a Ctx so that parameters are looked up by
 * their Hugging Face name (with PEFT overrides applied) and so that Linear/Conv1D calls pass through the
 * PEFT hook (LoRA) with the module's full name.
 */
import * as tf from '@tensorflow/tfjs';
import { checkpoint } from '../ops/autodiff';
import * as ops from '../ops/fused';
import { keepPacked } from '../wasm-matmul';
import { EngineError } from '../errors';
import type { Decoding, ForwardHooks, ForwardInput, LinearModule, ParamMap } from './types';

/** Added to attention scores of masked keys. transformers uses float32 min; any value that makes exp() 0 agrees. */
export const MASK_VALUE = -1e9;

export interface Ctx {
  get(name: string): tf.Tensor;
  has(name: string): boolean;
  hooks: ForwardHooks;
  training: boolean;
  /** Gradient checkpointing per block (see block()). */
  checkpoint: boolean;
  /** Seed of the next dropout mask; block() replays a block's seeds when it recomputes it. */
  seed: number;
  /** Trainable variables read inside modules named `prefix...` (base parameters, overrides, hook variables). */
  variablesUnder(prefix: string): tf.Variable[];
  /** Set while decoding on wasm: how linear() multiplies by an [out, in] weight (see LinearProducts). */
  linearProducts?: LinearProducts;
}

export function makeCtx(params: ParamMap, hooks: ForwardHooks = {}, input: Pick<ForwardInput, 'training' | 'checkpoint' | 'seed'> = {}): Ctx {
  const ov = hooks.overrides;
  return {
    get(name) {
      const t = ov?.get(name) ?? params.get(name);
      if (!t) throw new Error(`internal: parameter ${name} is not loaded`);
      return t;
    },
    has: (name) => (ov?.has(name) ?? false) || params.has(name),
    hooks,
    training: !!input.training,
    checkpoint: !!input.checkpoint,
    // Seeds far apart per forward, consecutive per dropout site within one.
    seed: (input.seed ?? 0) * 65536,
    variablesUnder(prefix) {
      const out = new Set<tf.Variable>();
      for (const [name, t] of [...params, ...(ov ?? [])]) {
        if (name.startsWith(prefix) && t instanceof tf.Variable && t.trainable) out.add(t);
      }
      for (const v of hooks.variablesUnder?.(prefix) ?? []) out.add(v);
      return [...out];
    },
  };
}

/**
 * One transformer block, in its own tidy scope: its intermediates are released when it returns (the tape keeps
 * its own references to what the backward pass needs), so the forward holds one block's temporaries at a time.
 * Measured on a 4-layer d=256 GPT-2 at batch 8 x 64, one scope around the whole forward held 258 MB at the LM
 * head. With checkpointing the block keeps only its input and is recomputed in the backward pass (its dropout
 * masks replayed from the same seeds): activation memory becomes one [B, S, C] per layer plus one block's worth,
 * at the cost of a second forward pass. `consts` are the tensors the block reads besides its input and
 * parameters (attention bias, rotary tables); fn must take them from its argument, not from a closure.
 */
export function block(
  ctx: Ctx, prefix: string, x: tf.Tensor, consts: tf.Tensor[], fn: (x: tf.Tensor, consts: tf.Tensor[]) => tf.Tensor,
): tf.Tensor {
  if (!ctx.checkpoint) return tf.tidy(() => fn(x, consts));
  const seed = ctx.seed;
  const run = (xin: tf.Tensor, c: tf.Tensor[]) => {
    ctx.seed = seed;
    return fn(xin, c);
  };
  return checkpoint(run, x, consts, ctx.variablesUnder(`${prefix}.`));
}

/** Applies the PEFT hook (if any) around a base projection; the hook also sees the module's weight and bias. */
function hooked(ctx: Ctx, name: string, x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor, module: LinearModule): tf.Tensor {
  return ctx.hooks.linear ? ctx.hooks.linear(name, x, base, () => ctx.seed++, module) : base(x);
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
  const w = ctx.get(`${name}.weight`);
  const b = ctx.has(`${name}.bias`) ? ctx.get(`${name}.bias`) : null;
  return hooked(ctx, name, x, (inp) => {
    const y = ctx.linearProducts ? ctx.linearProducts.times(inp, w) : matmulLast(inp, w, true);
    return b ? tf.add(y, b) : y;
  }, { weight: w, bias: b, conv1d: false });
}

/** transformers' GPT-2 Conv1D: weight [in, out], y = x W + b. */
export function conv1d(ctx: Ctx, name: string, x: tf.Tensor): tf.Tensor {
  const w = ctx.get(`${name}.weight`);
  const b = ctx.get(`${name}.bias`);
  return hooked(ctx, name, x, (inp) => {
    return tf.add(ctx.linearProducts ? ctx.linearProducts.plain(inp, w) : matmulLast(inp, w, false), b);
  }, { weight: w, bias: b, conv1d: true });
}

export function layerNorm(ctx: Ctx, name: string, x: tf.Tensor, eps: number): tf.Tensor {
  return ops.layerNorm(x, ctx.get(`${name}.weight`), ctx.get(`${name}.bias`), eps);
}

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(ctx: Ctx, name: string, x: tf.Tensor, eps: number): tf.Tensor {
  return ops.rmsNorm(x, ctx.get(`${name}.weight`), eps);
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

/** `n` rows of a position table from `start` (positions start..start+n-1). slice has a gradient everywhere. */
export function positions(ctx: Ctx, name: string, n: number, start = 0): tf.Tensor {
  const table = ctx.get(`${name}.weight`);
  if (start + n > table.shape[0]) {
    throw new Error(`sequence of ${start + n} tokens is longer than the model's ${table.shape[0]} positions`);
  }
  return tf.slice(table, [start, 0], [n, table.shape[1]!]);
}

/** Dropout in training (a fresh seed per call site), identity otherwise. */
export function dropout(ctx: Ctx, x: tf.Tensor, p: number): tf.Tensor {
  return ctx.training && p > 0 ? ops.dropout(x, p, ctx.seed++) : x;
}

/** Activation by transformers' ACT2FN name. */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return ops.geluTanh(x);
    case 'gelu':
      return ops.geluErf(x);
    case 'silu':
    case 'swish':
      return ops.silu(x);
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    default:
      throw new Error(`activation "${name}" is not supported`);
  }
}

/** act(gate) * up (LLaMA's SwiGLU MLP), fused for silu. */
export function gated(name: string, gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  return name === 'silu' || name === 'swish' ? ops.gatedSilu(gate, up) : tf.mul(activation(name, gate), up);
}

/**
 * Additive attention bias [B, 1, S, past+S]: MASK_VALUE where a query may not look at a key (future positions
 * when causal, padding keys from attention_mask), 0 elsewhere. `past` keys in front of the sequence's own
 * (prefix tuning's prefix) are seen by every query, as PEFT's extended mask (ones in front) and the causal
 * slice of a cache make them. Built from plain arrays, not bandPart, whose gradient is broken in tfjs; it
 * carries no gradient anyway.
 */
export function attentionBias(mask: tf.Tensor | undefined, batch: number, seq: number, causal: boolean, past = 0): tf.Tensor {
  return tf.tidy(() => {
    let bias: tf.Tensor = causal ? causalBias(seq, past) : tf.zeros([1, 1, seq, past + seq]);
    if (mask) {
      const m = past > 0 ? tf.concat([tf.ones([batch, past]), mask.toFloat()], 1) : mask.toFloat();
      const pad = tf.mul(tf.sub(1, m), MASK_VALUE).reshape([batch, 1, 1, past + seq]);
      bias = tf.add(bias, pad);
    }
    return bias;
  });
}

/**
 * Per-backend cache of tensors that depend only on a shape (causal masks, RoPE tables): built once and
 * reused by every forward, instead of being rebuilt in JavaScript and uploaded each time.
 */
const shapeCache = new Map<string, tf.Tensor>();
let shapeCacheBackend = '';

export function cachedTensor(key: string, make: () => tf.Tensor): tf.Tensor {
  const backend = tf.getBackend();
  if (backend !== shapeCacheBackend) {
    shapeCache.clear(); // tensors of another backend (they were disposed with it)
    shapeCacheBackend = backend;
  }
  let t = shapeCache.get(key);
  if (!t || t.isDisposed) {
    t = tf.keep(make());
    shapeCache.set(key, t);
  }
  // A new handle on the same data, so that callers may dispose what they get.
  return t.clone();
}

/** [1, 1, S, past+S] with MASK_VALUE above the diagonal of the last S keys (query i sees keys 0..past+i). */
function causalBias(seq: number, past = 0): tf.Tensor {
  return cachedTensor(past ? `causal:${seq}:${past}` : `causal:${seq}`, () => {
    const n = past + seq;
    const c = new Float32Array(seq * n);
    for (let i = 0; i < seq; i++) for (let j = past + i + 1; j < n; j++) c[i * n + j] = MASK_VALUE;
    return tf.tensor4d(c, [1, 1, seq, n]);
  });
}

/** [B, S, H*D] -> [B, H, S, D] */
export function splitHeads(x: tf.Tensor, heads: number, headDim: number): tf.Tensor {
  const [b, s] = x.shape;
  // One position (a decoding step): both layouts are the same, so no transpose kernel (a copy) is needed.
  if (s === 1) return x.reshape([b!, heads, 1, headDim]);
  return x.reshape([b, s, heads, headDim]).transpose([0, 2, 1, 3]);
}

/** [B, H, S, D] -> [B, S, H*D] */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [b, h, s, d] = x.shape;
  if (s === 1) return x.reshape([b!, 1, h! * d!]); // as in splitHeads
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
  const p = ctx.training ? pDrop : 0;
  return ops.attention(q, k, v, { bias, scale, dropout: p, seed: p > 0 ? ctx.seed++ : 0 });
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

/** Prefix tuning: how many prefix keys come before the sequence's own (0 without), which shifts its positions. */
export function prefixLength(ctx: Ctx): number {
  return ctx.hooks.pastKeyValues?.length ?? 0;
}

/**
 * Keys / values [B, H, S, D] of a layer with prefix tuning's prefix in front ([B, H, V+S, D]), as transformers
 * appends new keys to PEFT's cache; unchanged without a prefix. Called inside the block, so a checkpointed block
 * rebuilds the prefix in its recompute and the prefix's variables get their gradient.
 */
export function withPrefix(ctx: Ctx, layer: number, k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
  const pkv = ctx.hooks.pastKeyValues;
  if (!pkv) return { k, v };
  const p = pkv.layer(layer); // [1, H, V, D] each
  const B = k.shape[0]!;
  // PEFT repeats the prefix over the batch; Tile's gradient sums it back on every backend.
  const rep = (t: tf.Tensor) => (B === 1 ? t : tf.tile(t, [B, 1, 1, 1]));
  return { k: tf.concat([rep(p.k), k], 2), v: tf.concat([rep(p.v), v], 2) };
}

// ---------------------------------------------------------------------------------------------------------
// Decoding with a key/value cache

/**
 * One layer's keys and values while decoding: `past` [B, H, L, D] holds the L positions already seen (absent
 * for the prompt), and the block stores `present` = past ++ this step's S positions, which it attends over.
 */
export interface LayerCache {
  past?: { k: tf.Tensor; v: tf.Tensor };
  present?: { k: tf.Tensor; v: tf.Tensor };
}

/**
 * The bookkeeping every KV-cached decoding shares (decoder-only models in index.ts, T5's decoder in t5.ts):
 * `step` runs new token ids over the cache so far and returns the next-token logits, each layer's extended
 * keys / values and how many positions it added; the old cache and logits are freed as the new ones arrive.
 * `first` runs at once (the prompt, or T5's decoder_start_token_id); if it fails, everything is freed.
 * `release` frees what the caller made for this decoding (weight copies, T5's encoder output).
 */
export function cachedDecoding(o: {
  first: number[];
  startLength: number;
  maxLength: number;
  /** The message when next() finds the cache full. */
  full: string;
  step: (ids: number[], past: { k: tf.Tensor; v: tf.Tensor }[], length: number) => { logits: tf.Tensor1D; present: { k: tf.Tensor; v: tf.Tensor }[]; added: number };
  release?: () => void;
}): Decoding {
  let kv: { k: tf.Tensor; v: tf.Tensor }[] = [];
  let length = o.startLength;
  let logits: tf.Tensor1D | null = null;
  let disposed = false;
  const run = (ids: number[]) => {
    const out = o.step(ids, kv, length);
    for (const p of kv) (p.k.dispose(), p.v.dispose());
    kv = out.present;
    logits?.dispose();
    logits = out.logits;
    length += out.added;
  };
  const decoding: Decoding = {
    get logits() {
      if (!logits) throw new Error('internal: this decoding has been disposed');
      return logits;
    },
    get length() {
      return length;
    },
    maxLength: o.maxLength,
    next(tokenId) {
      if (disposed) throw new Error('internal: next() on a disposed decoding');
      if (length >= o.maxLength) throw new EngineError('BAD_ARGUMENT', o.full);
      run([tokenId]);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const p of kv) (p.k.dispose(), p.v.dispose());
      kv = [];
      logits?.dispose();
      logits = null;
      o.release?.();
    },
  };
  try {
    run(o.first);
  } catch (e) {
    decoding.dispose();
    throw e;
  }
  return decoding;
}

/**
 * Before a decoding's first step: prefix tuning's prefix becomes every layer's cached past (so the prompt's
 * tokens sit at positions V.. and attend to it); a no-op otherwise. Returns the positions the caches hold,
 * which is where the step's new tokens start.
 */
export function cachedLength(ctx: Ctx, caches: LayerCache[]): number {
  const pkv = ctx.hooks.pastKeyValues;
  if (pkv && caches.every((c) => !c.past)) caches.forEach((c, i) => (c.past = pkv.layer(i)));
  return caches[0]?.past?.k.shape[2] ?? 0;
}

/** The keys / values [B, H, S, D] a block attends over: unchanged in a plain forward, past ++ new when decoding. */
export function withCache(cache: LayerCache | undefined, k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
  if (!cache) return { k, v };
  const kv = cache.past ? { k: tf.concat([cache.past.k, k], 2), v: tf.concat([cache.past.v, v], 2) } : { k, v };
  cache.present = kv;
  return kv;
}

/**
 * Runs one block of a decoding step in its own tidy scope, keeping its output and the layer's new keys/values
 * (so a long prompt holds one block's temporaries at a time, as block() does for the forward).
 */
export function cachedBlock(cache: LayerCache, fn: () => tf.Tensor): tf.Tensor {
  const out = tf.tidy(() => {
    const y = fn();
    if (!cache.present) throw new Error('internal: a decoding block did not fill its cache');
    return { y, k: cache.present.k, v: cache.present.v };
  });
  cache.present = { k: out.k, v: out.v };
  return out.y;
}

/**
 * attend() while decoding. One new query reads the cache with broadcast products and sums instead of matMul:
 * on wasm the batched q k^T and p v run one XNNPACK product per head (measured: 1.66 ms per GPT-2 layer at
 * 64 cached positions, against 0.30 ms here). Grouped-query heads read their kv head as attend() does.
 * A prompt (several queries) goes through attend(). No dropout: decoding never trains.
 */
export function attendCached(
  ctx: Ctx, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, scale: number,
): tf.Tensor {
  const [B, H, S, D] = q.shape;
  if (S !== 1) return attend(ctx, q, k, v, bias, scale, 0);
  const G = k.shape[1]!;
  const L = k.shape[2]!;
  const rep = H! / G;
  const qg = q.reshape([B! * G, rep, 1, D!]); // query heads of kv head g: [B*G, rep, 1, D]
  const kg = k.reshape([B! * G, 1, L, D!]);
  const scores = tf.sum(tf.mul(qg, kg), -1); // [B*G, rep, L]
  const probs = tf.softmax(tf.add(tf.mul(scores, scale), bias.reshape([1, 1, L])), -1); // bias [1, 1, 1, L]
  const out = tf.sum(tf.mul(probs.reshape([B! * G, rep, L, 1]), v.reshape([B! * G, 1, L, D!])), 2); // [B*G, rep, D]
  return out.reshape([B!, H!, 1, D!]);
}

/**
 * Additive bias [1, 1, S, L+S] for S new queries at positions L..L+S-1 over every key so far: causal among the
 * new tokens, everything cached visible. One new token sees all keys, so its bias is zeros.
 */
export function decodeBias(past: number, seq: number): tf.Tensor {
  if (past === 0) return attentionBias(undefined, 1, seq, true);
  const n = past + seq;
  const c = new Float32Array(seq * n);
  for (let i = 0; i < seq; i++) for (let j = past + i + 1; j < n; j++) c[i * n + j] = MASK_VALUE;
  return tf.tensor4d(c, [1, 1, seq, n]);
}

/**
 * x W^T for nn.Linear weights W [out, in] while decoding on wasm. tfjs-wasm's matMul with transposeB transposes
 * the whole weight on every call (measured: 320 ms for GPT-2's 50257 x 768 LM head, 8 ms for a 1536 x 576
 * projection, where the product itself takes 0.2 ms), which one-token steps would pay for every weight and
 * every token. So the weights used first get one transposed copy [in, out] each for the lifetime of the
 * decoding, up to `budgetBytes` (XNNPACK keeps a copy packed, so each costs twice its size; the LM-head product
 * then takes 6.7 ms);
 * weights past the budget are multiplied as (W x^T)^T, where only the few rows of x get transposed (25 ms for
 * the LM head, 0.85 ms for the projection), so no weight is ever transposed per token.
 *
 * Conv1D weights ([in, out], GPT-2) need no transpose, but get a copy of their own too: decoding runs under the
 * 'marked' pack policy, so XNNPACK's packed copies belong to these copies and are freed with them at the end,
 * instead of staying with the model's weights (340 MB at GPT-2-124M) into the next training run.
 */
export class LinearProducts {
  private readonly copies = new Map<tf.Tensor, tf.Tensor>();
  private left: number;

  constructor(budgetBytes: number) {
    this.left = budgetBytes;
  }

  /** x [..., in] times w [out, in] transposed: [..., out]. */
  times(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    let wT = this.copies.get(w);
    if (!wT && this.left >= 2 * 4 * w.size) {
      wT = tf.keep(tf.transpose(w)); // [in, out], outlives the step's tidy scope; freed by dispose()
      keepPacked(wT); // stays packed under the 'marked' pack policy too
      this.copies.set(w, wT);
      this.left -= 2 * 4 * w.size;
    }
    if (wT) return matmulLast(x, wT, false);
    const lead = x.shape.slice(0, -1);
    const rows = x.reshape([-1, x.shape[x.shape.length - 1]!]) as tf.Tensor2D; // [R, in]
    const yT = tf.matMul(w as tf.Tensor2D, rows, false, true); // [out, R]
    // One row: [out, 1] and [1, out] have the same layout, so no transpose is needed.
    const y = rows.shape[0] === 1 ? yT.reshape([1, w.shape[0]!]) : yT.transpose();
    return y.reshape([...lead, w.shape[0]!]);
  }

  /** x [..., in] times w [in, out] (Conv1D): [..., out]. */
  plain(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    let c = this.copies.get(w);
    if (!c && this.left >= 2 * 4 * w.size) {
      c = tf.keep(tf.add(w, 0)); // a buffer of its own (a clone would share the weight's, and its packed copy)
      keepPacked(c);
      this.copies.set(w, c);
      this.left -= 2 * 4 * w.size;
    }
    return matmulLast(x, c ?? w, false);
  }

  dispose(): void {
    for (const t of this.copies.values()) t.dispose();
    this.copies.clear();
  }
}

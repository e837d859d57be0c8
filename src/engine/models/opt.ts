/**
 * OPT (OPTForCausalLM, OPTForSequenceClassification), following transformers 4.43's modeling_opt.py (eager
 * attention). Parameter names are the checkpoint keys; every projection is an nn.Linear ([out, in]).
 *
 * What sets OPT apart from GPT-2:
 * - learned positions with an offset of 2 (fairseq reserved rows 0-1), taken from the attention mask:
 *   row = cumsum(mask) * mask - 1 + 2, so a right-padded row's real tokens use rows 2, 3, ... and pads row 1;
 * - do_layer_norm_before: pre-LN (125m, 1.3b and up) or post-LN (350m), and the decoder's final_layer_norm only
 *   with pre-LN (unless _remove_final_layer_norm, kept for checkpoints fine-tuned before transformers 4.20.1);
 * - word_embed_proj_dim < hidden_size (350m): project_in after the embedding, project_out before the LM head;
 * - q_proj's output is scaled by head_dim^-0.5 before q k^T (the same product up to rounding).
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, attendCached, attentionBias, block, cachedBlock, cachedLength, cachedTensor, decodeBias, dropout, embedding,
  linear, mergeHeads, positions, prefixLength, prefixMask, prependPrefix, splitHeads, withCache, withPrefix, type Ctx, type LayerCache,
} from './layers';
import * as ops from '../ops/fused';
import { maskPositions, poolLastToken } from './pooling';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

/** OPTLearnedPositionalEmbedding's offset: position p reads row p + 2. */
const POSITION_OFFSET = 2;

export interface OPTConfig extends ArchConfig {
  ffnDim: number;
  /** Width of the token embeddings and the LM head (= hiddenSize except 350m's 512). */
  wordEmbedProjDim: number;
  doLayerNormBefore: boolean;
  /** The decoder has final_layer_norm (pre-LN and not _remove_final_layer_norm). */
  finalLayerNorm: boolean;
  /** LayerNorms have weight and bias (layer_norm_elementwise_affine). */
  layerNormAffine: boolean;
  /** Biases on q/k/v/out_proj and fc1/fc2 (enable_bias). */
  bias: boolean;
  activation: string;
  /** `dropout`: after attention and after fc2. */
  hiddenDropout: number;
  attentionDropout: number;
  initStd: number;
}

function parseConfig(raw: Record<string, unknown>): OPTConfig {
  const hidden = requiredInt(raw, 'hidden_size');
  const heads = requiredInt(raw, 'num_attention_heads');
  if (hidden % heads !== 0) throw new TypeError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  const doLayerNormBefore = field(raw, 'do_layer_norm_before', true);
  return {
    modelType: 'opt',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'num_hidden_layers'),
    numHeads: heads,
    maxPositions: field(raw, 'max_position_embeddings', 2048),
    ffnDim: requiredInt(raw, 'ffn_dim'),
    // OPTConfig: word_embed_proj_dim None means hidden_size.
    wordEmbedProjDim: raw.word_embed_proj_dim == null ? hidden : requiredInt(raw, 'word_embed_proj_dim'),
    doLayerNormBefore,
    finalLayerNorm: doLayerNormBefore && !field(raw, '_remove_final_layer_norm', false),
    layerNormAffine: field(raw, 'layer_norm_elementwise_affine', true),
    bias: field(raw, 'enable_bias', true),
    activation: field(raw, 'activation_function', 'relu'),
    hiddenDropout: field(raw, 'dropout', 0.1),
    attentionDropout: field(raw, 'attention_dropout', 0),
    initStd: field(raw, 'init_std', 0.02),
    numLabels: numLabelsOf(raw),
    // OPTConfig's defaults: pad 1, bos / eos 2.
    padTokenId: raw.pad_token_id === undefined ? 1 : optionalId(raw, 'pad_token_id'),
    bosTokenId: raw.bos_token_id === undefined ? 2 : optionalId(raw, 'bos_token_id'),
    eosTokenId: raw.eos_token_id === undefined ? 2 : optionalId(raw, 'eos_token_id'),
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
  };
}

function className(_c: OPTConfig, task: TaskType): string {
  return task === 'SEQ_CLS' ? 'OPTForSequenceClassification' : 'OPTForCausalLM';
}

/** Class names transformers' ACT2FN gives the activation module. */
function activationClass(act: string): string {
  const names: Record<string, string> = {
    relu: 'ReLU', gelu: 'GELUActivation', gelu_new: 'NewGELUActivation', gelu_pytorch_tanh: 'PytorchGELUTanh', silu: 'SiLU', swish: 'SiLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

function modules(c: OPTConfig, task: TaskType) {
  const C = c.hiddenSize;
  const E = c.wordEmbedProjDim;
  const t = new TreeBuilder();
  const norm = (name: string) => (c.layerNormAffine ? t.layerNorm(name, C) : t.add(name, 'LayerNorm'));
  t.add('', className(c, task));
  t.add('model', 'OPTModel');
  t.add('model.decoder', 'OPTDecoder');
  t.embedding('model.decoder.embed_tokens', c.vocabSize, E);
  t.add('model.decoder.embed_positions', 'OPTLearnedPositionalEmbedding', { weight: [c.maxPositions + POSITION_OFFSET, C] });
  if (E !== C) {
    t.linear('model.decoder.project_out', C, E, false);
    t.linear('model.decoder.project_in', E, C, false);
  }
  if (c.finalLayerNorm) norm('model.decoder.final_layer_norm');
  t.add('model.decoder.layers', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.decoder.layers.${i}`;
    t.add(p, 'OPTDecoderLayer');
    t.add(`${p}.self_attn`, 'OPTAttention');
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) t.linear(`${p}.self_attn.${proj}`, C, C, c.bias);
    t.add(`${p}.activation_fn`, activationClass(c.activation));
    norm(`${p}.self_attn_layer_norm`);
    t.linear(`${p}.fc1`, C, c.ffnDim, c.bias);
    t.linear(`${p}.fc2`, c.ffnDim, C, c.bias);
    norm(`${p}.final_layer_norm`);
  }
  if (task === 'SEQ_CLS') t.linear('score', E, c.numLabels, false);
  else t.linear('lm_head', E, c.vocabSize, false);
  return t.rows;
}

/** nn.LayerNorm, with or without its affine parameters (layer_norm_elementwise_affine). */
function norm(c: OPTConfig, ctx: Ctx, name: string, x: tf.Tensor): tf.Tensor {
  if (c.layerNormAffine) return ops.layerNorm(x, ctx.get(`${name}.weight`), ctx.get(`${name}.bias`), 1e-5);
  const C = c.hiddenSize;
  return ops.layerNorm(x, cachedTensor(`ones:${C}`, () => tf.ones([C])), cachedTensor(`zeros:${C}`, () => tf.zeros([C])), 1e-5);
}

/**
 * One decoder layer: attention then the fc1 -> act -> fc2 MLP, each with a residual, normalised before (pre-LN)
 * or after (post-LN) as do_layer_norm_before says. With a cache, attends over past + new keys.
 */
function decoderLayer(c: OPTConfig, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor, cache?: LayerCache): tf.Tensor {
  const p = `model.decoder.layers.${i}`;
  const hd = c.hiddenSize / c.numHeads;
  const pre = c.doLayerNormBefore;
  // attention
  const h = pre ? norm(c, ctx, `${p}.self_attn_layer_norm`, x) : x; // [B, S, C]
  const q = splitHeads(linear(ctx, `${p}.self_attn.q_proj`, h), c.numHeads, hd); // [B, nh, S, hd]
  const kNew = splitHeads(linear(ctx, `${p}.self_attn.k_proj`, h), c.numHeads, hd);
  const vNew = splitHeads(linear(ctx, `${p}.self_attn.v_proj`, h), c.numHeads, hd);
  const { k, v } = cache ? withCache(cache, kNew, vNew) : withPrefix(ctx, i, kNew, vNew); // [B, nh, L+S, hd]
  const scale = 1 / Math.sqrt(hd);
  const att = cache ? attendCached(ctx, q, k, v, bias, scale) : attend(ctx, q, k, v, bias, scale, c.attentionDropout);
  x = tf.add(x, dropout(ctx, linear(ctx, `${p}.self_attn.out_proj`, mergeHeads(att)), c.hiddenDropout));
  if (!pre) x = norm(c, ctx, `${p}.self_attn_layer_norm`, x);
  // mlp
  const h2 = pre ? norm(c, ctx, `${p}.final_layer_norm`, x) : x;
  const m = linear(ctx, `${p}.fc2`, activation(c.activation, linear(ctx, `${p}.fc1`, h2))); // [B, S, C]
  x = tf.add(x, dropout(ctx, m, c.hiddenDropout));
  return pre ? x : norm(c, ctx, `${p}.final_layer_norm`, x);
}

/** Token embeddings [B, S, E] to the decoder's width C (project_in when word_embed_proj_dim differs). */
function embedIn(c: OPTConfig, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  return c.wordEmbedProjDim === c.hiddenSize ? x : linear(ctx, 'model.decoder.project_in', x);
}

/** After the last layer: final_layer_norm (pre-LN models), then project_out back to the LM head's width. */
function finish(c: OPTConfig, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  if (c.finalLayerNorm) x = norm(c, ctx, 'model.decoder.final_layer_norm', x);
  return c.wordEmbedProjDim === c.hiddenSize ? x : linear(ctx, 'model.decoder.project_out', x);
}

function hidden(c: OPTConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  // Prompt tuning prepends to the token embeddings (before project_in); PEFT's mask has ones in front of them.
  let x = prependPrefix(ctx, embedding(ctx, 'model.decoder.embed_tokens', input.inputIds)); // [B, S, E], S = P + T
  const S = x.shape[1]!;
  const past = prefixLength(ctx); // prefix tuning's keys, all attended: real positions start after them
  const mask = prefixMask(ctx, input.attentionMask, B, T); // [B, S] or none
  const pos = mask
    ? embedding(ctx, 'model.decoder.embed_positions', tf.add(maskPositions(mask, past, -1), POSITION_OFFSET)) // [B, S, C]
    : positions(ctx, 'model.decoder.embed_positions', S, past + POSITION_OFFSET); // [S, C]
  x = tf.add(embedIn(c, ctx, x), pos); // [B, S, C]
  const bias = attentionBias(mask, B, S, true, past); // [B|1, 1, S, past+S]
  for (let i = 0; i < c.numLayers; i++) x = block(ctx, `model.decoder.layers.${i}`, x, [bias], (h, [b]) => decoderLayer(c, ctx, i, h, b));
  return finish(c, ctx, x); // [B, S, E]
}

/** Decoding step (DecoderSpec.step): S new tokens at positions L..L+S-1 over L cached ones (one unpadded row). */
function step(c: OPTConfig, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor {
  let x = embedding(ctx, 'model.decoder.embed_tokens', inputIds); // [1, S, E]
  if (past === 0) x = prependPrefix(ctx, x); // virtual tokens open the cache
  const S = x.shape[1]!;
  const L = cachedLength(ctx, caches);
  x = tf.add(embedIn(c, ctx, x), positions(ctx, 'model.decoder.embed_positions', S, L + POSITION_OFFSET));
  const bias = decodeBias(L, S); // [1, 1, S, L+S]
  for (let i = 0; i < c.numLayers; i++) {
    const h = x;
    x = cachedBlock(caches[i], () => decoderLayer(c, ctx, i, h, bias, caches[i]));
  }
  return finish(c, ctx, x);
}

function head(c: OPTConfig, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor {
  if (task === 'CAUSAL_LM') return linear(ctx, 'lm_head', x); // lm_head.weight is embed_tokens' when tied
  return linear(ctx, 'score', poolLastToken(c.padTokenId, className(c, task), ctx, input, x)); // [B, num_labels]
}

export const opt: ArchitectureSpec<OPTConfig> = {
  id: 'opt',
  modelTypes: ['opt'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for opt.
  peftDefaults: () => ({
    lora: ['q_proj', 'v_proj'],
    adalora: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'],
    ia3: ['q_proj', 'k_proj', 'fc2'],
    ia3Feedforward: ['fc2'],
  }),
  roles: { attention: /\.self_attn\./, mlp: /\.fc[12]$/, head: /^(lm_head|score)$/ },
  ffnSize: (c) => c.ffnDim,
  mlpKind: 'plain',
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: (_c, task) => (task === 'SEQ_CLS' ? { classifier: 'score' } : { outputEmbedding: 'lm_head' }),
  tied: (c, task): Record<string, string> =>
    task === 'CAUSAL_LM' && c.tieWordEmbeddings ? { 'lm_head.weight': 'model.decoder.embed_tokens.weight' } : {},
  basePrefix: 'model.',
  initParam(name, shape, c, rng) {
    // OPTPreTrainedModel._init_weights: Linear / Embedding ~ N(0, init_std), biases 0, the padding_idx row 0;
    // LayerNorm 1 / 0.
    const n = shape.reduce((a, b) => a * b, 1);
    if (/layer_norm\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    const w = rng.fillNormal(n, c.initStd);
    if (name === 'model.decoder.embed_tokens.weight' && c.padTokenId !== null && c.padTokenId < shape[0]) {
      w.fill(0, c.padTokenId * shape[1], (c.padTokenId + 1) * shape[1]);
    }
    return w;
  },
  hidden,
  head,
  // Learned positions end at max_position_embeddings.
  decoder: { maxLength: (c) => c.maxPositions, step },
};

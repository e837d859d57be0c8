/**
 * GPT-2 (GPT2LMHeadModel, GPT2ForSequenceClassification, GPT2ForTokenClassification), following transformers' modeling_gpt2.py.
 * Parameter names are the checkpoint keys; Conv1D weights are [in, out].
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, attendCached, attentionBias, block, cachedBlock, cachedLength, conv1d, decodeBias, dropout, embedding, layerNorm,
  linear, mergeHeads, positions, prefixLength, prefixMask, prependPrefix, splitHeads, withCache, withPrefix, type Ctx, type LayerCache,
} from './layers';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

export interface GPT2Config extends ArchConfig {
  nInner: number;
  layerNormEps: number;
  activation: string;
  embdPdrop: number;
  attnPdrop: number;
  residPdrop: number;
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  initializerRange: number;
  /** GPT2ForTokenClassification's dropout: classifier_dropout, else hidden_dropout, else 0.1. */
  classifierDropout: number;
}

function parseConfig(raw: Record<string, unknown>): GPT2Config {
  const hidden = requiredInt(raw, 'n_embd', 'hidden_size');
  const heads = requiredInt(raw, 'n_head', 'num_attention_heads');
  if (hidden % heads !== 0) throw new TypeError(`config.json: n_embd ${hidden} is not divisible by n_head ${heads}`);
  return {
    modelType: 'gpt2',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'n_layer', 'num_hidden_layers'),
    numHeads: heads,
    maxPositions: requiredInt(raw, 'n_positions', 'max_position_embeddings'),
    // n_inner null means 4 * n_embd, as in transformers.
    nInner: field<number>(raw, 'n_inner', 4 * hidden),
    layerNormEps: field(raw, 'layer_norm_epsilon', 1e-5),
    activation: field(raw, 'activation_function', 'gelu_new'),
    embdPdrop: field(raw, 'embd_pdrop', 0.1),
    attnPdrop: field(raw, 'attn_pdrop', 0.1),
    residPdrop: field(raw, 'resid_pdrop', 0.1),
    scaleAttnWeights: field(raw, 'scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: field(raw, 'scale_attn_by_inverse_layer_idx', false),
    initializerRange: field(raw, 'initializer_range', 0.02),
    classifierDropout: field<number>(raw, 'classifier_dropout', field<number>(raw, 'hidden_dropout', 0.1)),
    numLabels: numLabelsOf(raw),
    padTokenId: optionalId(raw, 'pad_token_id'),
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: optionalId(raw, 'eos_token_id'),
    // GPT-2 ties lm_head to wte unless the config says otherwise.
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
  };
}

function modules(c: GPT2Config, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task)!);
  t.add('transformer', 'GPT2Model');
  t.embedding('transformer.wte', c.vocabSize, C);
  t.embedding('transformer.wpe', c.maxPositions, C);
  t.add('transformer.drop', 'Dropout');
  t.add('transformer.h', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    t.add(p, 'GPT2Block');
    t.layerNorm(`${p}.ln_1`, C);
    t.add(`${p}.attn`, 'GPT2Attention');
    t.conv1d(`${p}.attn.c_attn`, C, 3 * C);
    t.conv1d(`${p}.attn.c_proj`, C, C);
    t.add(`${p}.attn.attn_dropout`, 'Dropout');
    t.add(`${p}.attn.resid_dropout`, 'Dropout');
    t.layerNorm(`${p}.ln_2`, C);
    t.add(`${p}.mlp`, 'GPT2MLP');
    t.conv1d(`${p}.mlp.c_fc`, C, c.nInner);
    t.conv1d(`${p}.mlp.c_proj`, c.nInner, C);
    t.add(`${p}.mlp.act`, activationClass(c.activation));
    t.add(`${p}.mlp.dropout`, 'Dropout');
  }
  t.layerNorm('transformer.ln_f', C);
  if (task === 'SEQ_CLS') t.linear('score', C, c.numLabels, false);
  else if (task === 'TOKEN_CLS') t.add('dropout', 'Dropout').linear('classifier', C, c.numLabels);
  else t.linear('lm_head', C, c.vocabSize, false);
  return t.rows;
}

/** Class names transformers' ACT2FN gives the activation module. */
function activationClass(act: string): string {
  const names: Record<string, string> = {
    gelu_new: 'NewGELUActivation', gelu: 'GELUActivation', gelu_fast: 'FastGELUActivation',
    gelu_pytorch_tanh: 'PytorchGELUTanh', relu: 'ReLU', silu: 'SiLU', swish: 'SiLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

/**
 * One GPT-2 block: pre-LN attention and MLP, each with a residual. With a cache, attends over past + new keys;
 * without, over prefix tuning's prefix (if any) + its own.
 */
function gpt2Block(c: GPT2Config, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor, cache?: LayerCache): tf.Tensor {
  const p = `transformer.h.${i}`;
  const C = c.hiddenSize;
  const hd = C / c.numHeads;
  // attention
  const h = layerNorm(ctx, `${p}.ln_1`, x, c.layerNormEps);
  const qkv = conv1d(ctx, `${p}.attn.c_attn`, h); // [B, S, 3C]
  const [q, kNew, vNew] = tf.split(qkv, 3, -1).map((t) => splitHeads(t, c.numHeads, hd)); // [B, nh, S, hd]
  // [B, nh, L+S, hd]: L cached positions when decoding (the prefix among them), else the prefix's (or none)
  const { k, v } = cache ? withCache(cache, kNew, vNew) : withPrefix(ctx, i, kNew, vNew);
  let scale = c.scaleAttnWeights ? 1 / Math.sqrt(hd) : 1;
  if (c.scaleAttnByInverseLayerIdx) scale /= i + 1;
  const att = cache ? attendCached(ctx, q, k, v, bias, scale) : attend(ctx, q, k, v, bias, scale, c.attnPdrop);
  const y = mergeHeads(att); // [B, S, C]
  x = tf.add(x, dropout(ctx, conv1d(ctx, `${p}.attn.c_proj`, y), c.residPdrop));
  // mlp
  const h2 = layerNorm(ctx, `${p}.ln_2`, x, c.layerNormEps);
  const m = conv1d(ctx, `${p}.mlp.c_proj`, activation(c.activation, conv1d(ctx, `${p}.mlp.c_fc`, h2)));
  return tf.add(x, dropout(ctx, m, c.residPdrop));
}

function hidden(c: GPT2Config, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  let x = prependPrefix(ctx, embedding(ctx, 'transformer.wte', input.inputIds)); // [B, S, C], S = P + T
  const S = x.shape[1]!;
  // Prefix tuning's V keys come first: GPT2Model takes position_ids = arange(past_length, past_length + S).
  const past = prefixLength(ctx);
  x = tf.add(x, positions(ctx, 'transformer.wpe', S, past)); // positions past..past+S-1, padding or not
  x = dropout(ctx, x, c.embdPdrop);
  const bias = attentionBias(prefixMask(ctx, input.attentionMask, B, T), B, S, true, past); // [B|1, 1, S, past+S]
  for (let i = 0; i < c.numLayers; i++) x = block(ctx, `transformer.h.${i}`, x, [bias], (h, [b]) => gpt2Block(c, ctx, i, h, b));
  return layerNorm(ctx, 'transformer.ln_f', x, c.layerNormEps); // [B, S, C]
}

/** Decoding step (DecoderSpec.step): S new tokens at positions L..L+S-1 over L cached ones. */
function step(c: GPT2Config, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor {
  let x = embedding(ctx, 'transformer.wte', inputIds); // [B, S, C]
  if (past === 0) x = prependPrefix(ctx, x); // virtual tokens open the cache: [B, P+T, C]
  const S = x.shape[1]!;
  // What the caches hold: `past`, plus prefix tuning's prefix, which opens them on the first step.
  const L = cachedLength(ctx, caches);
  x = tf.add(x, positions(ctx, 'transformer.wpe', S, L)); // positions L..L+S-1 (virtual tokens from 0)
  const bias = decodeBias(L, S); // [1, 1, S, L+S]
  for (let i = 0; i < c.numLayers; i++) {
    const h = x;
    x = cachedBlock(caches[i], () => gpt2Block(c, ctx, i, h, bias, caches[i]));
  }
  return layerNorm(ctx, 'transformer.ln_f', x, c.layerNormEps); // [B, S, C]
}

function head(c: GPT2Config, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor {
  if (task === 'CAUSAL_LM') return linear(ctx, 'lm_head', x); // lm_head.weight is wte's when tied
  if (task === 'TOKEN_CLS') return linear(ctx, 'classifier', dropout(ctx, x, c.classifierDropout)); // [B, S, num_labels]
  return linear(ctx, 'score', poolLastToken(c, ctx, input, x));
}

/**
 * GPT2ForSequenceClassification reads each row at (first pad position) - 1, modulo the length: the last
 * token when there is no padding. With prompt tuning PEFT passes inputs_embeds, so transformers has no
 * input_ids and takes the last position.
 */
function poolLastToken(c: GPT2Config, ctx: Ctx, input: ForwardInput, x: tf.Tensor): tf.Tensor {
  const [B, S, C] = x.shape;
  if (ctx.hooks.prefixEmbeds || c.padTokenId === null) {
    if (c.padTokenId === null && B > 1 && !ctx.hooks.prefixEmbeds) {
      throw new Error('GPT-2 sequence classification needs pad_token_id in config.json to batch more than one row');
    }
    return tf.slice(x, [0, S - 1, 0], [B, 1, C]).reshape([B, C]);
  }
  const isPad = tf.equal(input.inputIds, c.padTokenId).toInt();
  const idx = tf.mod(tf.add(tf.argMax(isPad, 1), S - 1), S); // first pad - 1, mod S
  const pick = tf.oneHot(idx.toInt(), S).toFloat().reshape([B, S, 1]);
  return tf.sum(tf.mul(x, pick), 1); // [B, C]
}

function className(_c: GPT2Config, task: TaskType): string | undefined {
  return ({ CAUSAL_LM: 'GPT2LMHeadModel', SEQ_CLS: 'GPT2ForSequenceClassification', TOKEN_CLS: 'GPT2ForTokenClassification' } as Partial<Record<TaskType, string>>)[task];
}

export const gpt2: ArchitectureSpec<GPT2Config> = {
  id: 'gpt2',
  modelTypes: ['gpt2'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for gpt2.
  peftDefaults: () => ({ lora: ['c_attn'], adalora: ['c_attn'], ia3: ['c_attn', 'mlp.c_proj'], ia3Feedforward: ['mlp.c_proj'] }),
  roles: { attention: /\.attn\./, mlp: /\.mlp\./, head: /^(lm_head|score|classifier)$/ },
  ffnSize: (c) => c.nInner,
  mlpKind: 'plain',
  seqClsPooling: 'last',
  parseConfig,
  modules,
  heads: (_c, task) => (task === 'SEQ_CLS' ? { classifier: 'score' } : task === 'TOKEN_CLS' ? { classifier: 'classifier' } : { outputEmbedding: 'lm_head' }),
  tied: (c, task): Record<string, string> => (task === 'CAUSAL_LM' && c.tieWordEmbeddings ? { 'lm_head.weight': 'transformer.wte.weight' } : {}),
  basePrefix: 'transformer.',
  initParam(name, shape, c, rng) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (/\.(ln_\d|ln_f)\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    // GPT-2's init scales residual projections by 1/sqrt(2 * n_layer).
    const std = name.endsWith('c_proj.weight') ? c.initializerRange / Math.sqrt(2 * c.numLayers) : c.initializerRange;
    return rng.fillNormal(n, std);
  },
  hidden,
  head,
  // Learned positions end at n_positions.
  decoder: { maxLength: (c) => c.maxPositions, step },
};

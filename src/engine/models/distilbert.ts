/**
 * DistilBERT (DistilBertForSequenceClassification, DistilBertForTokenClassification), following transformers 4.43's modeling_distilbert.py with
 * eager attention. Parameter names are the checkpoint keys; every projection is an nn.Linear ([out, in]).
 * Word + learned position embeddings (no token types), LayerNorm eps 1e-12 throughout (fixed in the code, not
 * in the config); post-LN blocks: x = sa_layer_norm(out_lin(attn(x)) + x); x = output_layer_norm(ffn(x) + x).
 * The SEQ_CLS head reads the first position: classifier(dropout(relu(pre_classifier(x[:, 0])))).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import {
  activation, attend, attentionBias, block, dropout, embedding, layerNorm, linear, mergeHeads, positions, prefixMask,
  prependPrefix, splitHeads, type Ctx,
} from './layers';
import { activationClass } from './bert';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';

export interface DistilBertConfig extends ArchConfig {
  /** hidden_dim: the FFN's inner width. */
  ffnDim: number;
  activation: string;
  dropout: number;
  attentionDropout: number;
  seqClassifDropout: number;
  initializerRange: number;
}

/** DistilBertModel's LayerNorms use nn.LayerNorm(eps=1e-12), not a config value. */
const LN_EPS = 1e-12;

function parseConfig(raw: Record<string, unknown>): DistilBertConfig {
  // DistilBertConfig's attribute_map: hidden_size -> dim, num_attention_heads -> n_heads, num_hidden_layers -> n_layers.
  const hidden = requiredInt(raw, 'dim', 'hidden_size');
  const heads = requiredInt(raw, 'n_heads', 'num_attention_heads');
  if (hidden % heads !== 0) throw new TypeError(`config.json: dim ${hidden} is not divisible by n_heads ${heads}`);
  if (field(raw, 'sinusoidal_pos_embds', false)) {
    throw new TypeError('config.json: sinusoidal_pos_embds true is not supported (only learned position embeddings)');
  }
  return {
    modelType: 'distilbert',
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'n_layers', 'num_hidden_layers'),
    numHeads: heads,
    maxPositions: field(raw, 'max_position_embeddings', 512),
    ffnDim: field(raw, 'hidden_dim', 4 * hidden),
    activation: field(raw, 'activation', 'gelu'),
    dropout: field(raw, 'dropout', 0.1),
    attentionDropout: field(raw, 'attention_dropout', 0.1),
    seqClassifDropout: field(raw, 'seq_classif_dropout', 0.2),
    initializerRange: field(raw, 'initializer_range', 0.02),
    numLabels: numLabelsOf(raw),
    // DistilBertConfig's default pad_token_id is 0.
    padTokenId: raw.pad_token_id === undefined ? 0 : optionalId(raw, 'pad_token_id'),
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: optionalId(raw, 'eos_token_id'),
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
  };
}

function className(_c: DistilBertConfig, task: TaskType): string | undefined {
  if (task === 'SEQ_CLS') return 'DistilBertForSequenceClassification';
  return task === 'TOKEN_CLS' ? 'DistilBertForTokenClassification' : undefined;
}

function modules(c: DistilBertConfig, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task)!);
  t.add('distilbert', 'DistilBertModel');
  t.add('distilbert.embeddings', 'Embeddings');
  t.embedding('distilbert.embeddings.word_embeddings', c.vocabSize, C);
  t.embedding('distilbert.embeddings.position_embeddings', c.maxPositions, C);
  t.layerNorm('distilbert.embeddings.LayerNorm', C);
  t.add('distilbert.embeddings.dropout', 'Dropout');
  t.add('distilbert.transformer', 'Transformer');
  t.add('distilbert.transformer.layer', 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `distilbert.transformer.layer.${i}`;
    t.add(p, 'TransformerBlock');
    t.add(`${p}.attention`, 'MultiHeadSelfAttention');
    t.add(`${p}.attention.dropout`, 'Dropout');
    for (const n of ['q_lin', 'k_lin', 'v_lin', 'out_lin']) t.linear(`${p}.attention.${n}`, C, C);
    t.layerNorm(`${p}.sa_layer_norm`, C);
    t.add(`${p}.ffn`, 'FFN');
    t.add(`${p}.ffn.dropout`, 'Dropout');
    t.linear(`${p}.ffn.lin1`, C, c.ffnDim);
    t.linear(`${p}.ffn.lin2`, c.ffnDim, C);
    t.add(`${p}.ffn.activation`, activationClass(c.activation));
    t.layerNorm(`${p}.output_layer_norm`, C);
  }
  if (task === 'TOKEN_CLS') {
    // DistilBertForTokenClassification.__init__ order: distilbert, dropout, classifier.
    t.add('dropout', 'Dropout');
    t.linear('classifier', C, c.numLabels);
    return t.rows;
  }
  // DistilBertForSequenceClassification.__init__ order: distilbert, pre_classifier, classifier, dropout.
  t.linear('pre_classifier', C, C);
  t.linear('classifier', C, c.numLabels);
  t.add('dropout', 'Dropout');
  return t.rows;
}

/** One post-LN TransformerBlock. */
function transformerBlock(c: DistilBertConfig, ctx: Ctx, i: number, x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const p = `distilbert.transformer.layer.${i}`;
  const hd = c.hiddenSize / c.numHeads;
  const q = splitHeads(linear(ctx, `${p}.attention.q_lin`, x), c.numHeads, hd); // [B, nh, S, hd]
  const k = splitHeads(linear(ctx, `${p}.attention.k_lin`, x), c.numHeads, hd);
  const v = splitHeads(linear(ctx, `${p}.attention.v_lin`, x), c.numHeads, hd);
  // transformers fills masked scores with float32 min instead of adding a bias: the same softmax.
  const y = mergeHeads(attend(ctx, q, k, v, bias, 1 / Math.sqrt(hd), c.attentionDropout)); // [B, S, C]
  x = layerNorm(ctx, `${p}.sa_layer_norm`, tf.add(linear(ctx, `${p}.attention.out_lin`, y), x), LN_EPS);
  const h = activation(c.activation, linear(ctx, `${p}.ffn.lin1`, x)); // [B, S, F]
  const o = dropout(ctx, linear(ctx, `${p}.ffn.lin2`, h), c.dropout);
  return layerNorm(ctx, `${p}.output_layer_norm`, tf.add(o, x), LN_EPS);
}

function hidden(c: DistilBertConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  if (ctx.hooks.pastKeyValues) {
    // DistilBertModel.forward takes no past_key_values, so PEFT's prefix tuning fails on it too.
    throw new EngineError('BAD_PEFT_CONFIG', 'DistilBERT takes no past_key_values, so prefix tuning cannot run on it (as in PEFT): use LoRA, IA3, AdaLoRA, prompt tuning or P-tuning.');
  }
  const [B, T] = input.inputIds.shape;
  // Prompt tuning prepends to the word embeddings; positions 0..S-1 are added after (inputs_embeds path).
  let x = prependPrefix(ctx, embedding(ctx, 'distilbert.embeddings.word_embeddings', input.inputIds)); // [B, S, C]
  const S = x.shape[1]!;
  x = tf.add(x, positions(ctx, 'distilbert.embeddings.position_embeddings', S));
  x = dropout(ctx, layerNorm(ctx, 'distilbert.embeddings.LayerNorm', x, LN_EPS), c.dropout);
  const bias = attentionBias(prefixMask(ctx, input.attentionMask, B, T), B, S, false); // padding keys only
  for (let i = 0; i < c.numLayers; i++) {
    x = block(ctx, `distilbert.transformer.layer.${i}`, x, [bias], (h, [b]) => transformerBlock(c, ctx, i, h, b));
  }
  return x; // [B, S, C]
}

function head(c: DistilBertConfig, task: TaskType, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  if (task === 'TOKEN_CLS') return linear(ctx, 'classifier', dropout(ctx, x, c.dropout)); // [B, S, num_labels]
  const [B] = x.shape;
  const C = c.hiddenSize;
  const first = tf.slice(x, [0, 0, 0], [B, 1, C]).reshape([B, C]); // [CLS] or the first virtual token
  const h = tf.relu(linear(ctx, 'pre_classifier', first));
  return linear(ctx, 'classifier', dropout(ctx, h, c.seqClassifDropout)); // [B, num_labels]
}

export const distilbert: ArchitectureSpec<DistilBertConfig> = {
  id: 'distilbert',
  modelTypes: ['distilbert'],
  className,
  // PEFT 0.15.2 has no LoRA, AdaLoRA or IA3 defaults for distilbert: it asks for target_modules.
  peftDefaults: () => ({ lora: null, adalora: null, ia3: null, ia3Feedforward: null }),
  roles: { attention: /\.attention\./, mlp: /\.ffn\./, head: /^(pre_classifier|classifier)$/ },
  ffnSize: (c) => c.ffnDim,
  mlpKind: 'plain',
  seqClsPooling: 'first',
  parseConfig,
  modules,
  // PEFT's SEQ_CLS "all-linear" skips only `classifier`; pre_classifier is wrapped by modules_to_save's endswith.
  heads: (_c, task) => ({ classifier: 'classifier', ...(task === 'SEQ_CLS' ? { headExtras: ['pre_classifier'] } : {}) }),
  tied: () => ({}),
  basePrefix: 'distilbert.',
  initParam(name, shape, c, rng) {
    // DistilBertPreTrainedModel._init_weights: Linear / Embedding ~ N(0, initializer_range), biases 0, LayerNorm
    // 1 / 0, the word embedding's padding_idx row 0.
    const n = shape.reduce((a, b) => a * b, 1);
    if (/(LayerNorm|layer_norm)\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith('.bias')) return new Float32Array(n);
    const w = rng.fillNormal(n, c.initializerRange);
    if (name === 'distilbert.embeddings.word_embeddings.weight' && c.padTokenId !== null && c.padTokenId < shape[0]) {
      w.fill(0, c.padTokenId * shape[1], (c.padTokenId + 1) * shape[1]);
    }
    return w;
  },
  hidden,
  head,
};

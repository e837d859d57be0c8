/**
 * BERT (BertForSequenceClassification, BertForTokenClassification), following transformers 4.43's modeling_bert.py with eager
 * attention. Parameter names are the checkpoint keys; every projection is an nn.Linear ([out, in]).
 * Post-LN encoder: x = LN(x + attn(x)); x = LN(x + ffn(x)); pooled = tanh(dense(x[:, 0])).
 * The encoder (its tree and its layers) is shared with RoBERTa (roberta.ts), which only renames it.
 */
import * as tf from '@tensorflow/tfjs';
import {
  activation, attend, attentionBias, block, dropout, embedding, layerNorm, linear, mergeHeads, positions, prefixLength,
  prefixMask, prependPrefix, splitHeads, withPrefix, type Ctx,
} from './layers';
import { quoteValue } from '../quote';
import { field, numLabelsOf, optionalId, requiredInt, TreeBuilder, type ArchitectureSpec } from './spec';
import type { ArchConfig, ForwardInput, TaskType } from './types';
import type { Rng } from '../random';

export interface BertConfig extends ArchConfig {
  intermediateSize: number;
  hiddenAct: string;
  hiddenDropout: number;
  attnDropout: number;
  /** classifier_dropout, or hidden_dropout_prob when null (as BertForSequenceClassification does). */
  classifierDropout: number;
  typeVocabSize: number;
  layerNormEps: number;
  initializerRange: number;
}

/** BertConfig's fields; RobertaConfig has the same ones with other defaults (`defaults`). */
export function parseBertLike(raw: Record<string, unknown>, modelType: string, defaults: { padTokenId: number | null }): BertConfig {
  const hidden = requiredInt(raw, 'hidden_size');
  const heads = requiredInt(raw, 'num_attention_heads');
  if (hidden % heads !== 0) {
    throw new TypeError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  const posType = field(raw, 'position_embedding_type', 'absolute');
  if (posType !== 'absolute') {
    throw new TypeError(`config.json: position_embedding_type ${quoteValue(posType)} is not supported (only "absolute")`);
  }
  const hiddenDropout = field(raw, 'hidden_dropout_prob', 0.1);
  return {
    modelType,
    vocabSize: requiredInt(raw, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: requiredInt(raw, 'num_hidden_layers'),
    numHeads: heads,
    maxPositions: field(raw, 'max_position_embeddings', 512),
    intermediateSize: requiredInt(raw, 'intermediate_size'),
    hiddenAct: field(raw, 'hidden_act', 'gelu'),
    hiddenDropout,
    attnDropout: field(raw, 'attention_probs_dropout_prob', 0.1),
    classifierDropout: field<number>(raw, 'classifier_dropout', hiddenDropout),
    typeVocabSize: field(raw, 'type_vocab_size', 2),
    layerNormEps: field(raw, 'layer_norm_eps', 1e-12),
    initializerRange: field(raw, 'initializer_range', 0.02),
    numLabels: numLabelsOf(raw),
    padTokenId: raw.pad_token_id === undefined ? defaults.padTokenId : optionalId(raw, 'pad_token_id'),
    bosTokenId: optionalId(raw, 'bos_token_id'),
    eosTokenId: optionalId(raw, 'eos_token_id'),
    // Only matters for an MLM head, which is not built here.
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', true),
  };
}

// BertConfig's default pad_token_id is 0.
const parseConfig = (raw: Record<string, unknown>) => parseBertLike(raw, 'bert', { padTokenId: 0 });

/** Class names transformers' ACT2FN gives the activation module. */
export function activationClass(act: string): string {
  const names: Record<string, string> = {
    gelu: 'GELUActivation', gelu_new: 'NewGELUActivation', gelu_pytorch_tanh: 'PytorchGELUTanh',
    relu: 'ReLU', silu: 'SiLU', swish: 'SiLU', tanh: 'Tanh',
  };
  return names[act] ?? act;
}

/**
 * The embeddings and encoder rows of a BERT-style model under `base` ("bert", "roberta"), classes named with
 * `cls` ("Bert", "Roberta"): the rows every BERT-family task class starts with.
 */
export function encoderModules(t: TreeBuilder, c: BertConfig, base: string, cls: string): void {
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  t.add(base, `${cls}Model`);
  t.add(`${base}.embeddings`, `${cls}Embeddings`);
  t.embedding(`${base}.embeddings.word_embeddings`, c.vocabSize, C);
  t.embedding(`${base}.embeddings.position_embeddings`, c.maxPositions, C);
  t.embedding(`${base}.embeddings.token_type_embeddings`, c.typeVocabSize, C);
  t.layerNorm(`${base}.embeddings.LayerNorm`, C);
  t.add(`${base}.embeddings.dropout`, 'Dropout');
  t.add(`${base}.encoder`, `${cls}Encoder`);
  t.add(`${base}.encoder.layer`, 'ModuleList');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${base}.encoder.layer.${i}`;
    t.add(p, `${cls}Layer`);
    t.add(`${p}.attention`, `${cls}Attention`);
    t.add(`${p}.attention.self`, `${cls}SelfAttention`);
    t.linear(`${p}.attention.self.query`, C, C);
    t.linear(`${p}.attention.self.key`, C, C);
    t.linear(`${p}.attention.self.value`, C, C);
    t.add(`${p}.attention.self.dropout`, 'Dropout');
    t.add(`${p}.attention.output`, `${cls}SelfOutput`);
    t.linear(`${p}.attention.output.dense`, C, C);
    t.layerNorm(`${p}.attention.output.LayerNorm`, C);
    t.add(`${p}.attention.output.dropout`, 'Dropout');
    t.add(`${p}.intermediate`, `${cls}Intermediate`);
    t.linear(`${p}.intermediate.dense`, C, I);
    t.add(`${p}.intermediate.intermediate_act_fn`, activationClass(c.hiddenAct));
    t.add(`${p}.output`, `${cls}Output`);
    t.linear(`${p}.output.dense`, I, C);
    t.layerNorm(`${p}.output.LayerNorm`, C);
    t.add(`${p}.output.dropout`, 'Dropout');
  }
}

function modules(c: BertConfig, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task)!);
  encoderModules(t, c, 'bert', 'Bert');
  // BertForTokenClassification builds BertModel(add_pooling_layer=False): no pooler.
  if (task === 'SEQ_CLS') {
    t.add('bert.pooler', 'BertPooler');
    t.linear('bert.pooler.dense', C, C);
    t.add('bert.pooler.activation', 'Tanh');
  }
  t.add('dropout', 'Dropout');
  t.linear('classifier', C, c.numLabels);
  return t.rows;
}

/** One post-LN encoder layer (`p` = "<base>.encoder.layer.<i>"). */
function encoderLayer(c: BertConfig, ctx: Ctx, p: string, i: number, x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const hd = c.hiddenSize / c.numHeads;
  // self-attention
  const q = splitHeads(linear(ctx, `${p}.attention.self.query`, x), c.numHeads, hd); // [B, nh, S, hd]
  const kNew = splitHeads(linear(ctx, `${p}.attention.self.key`, x), c.numHeads, hd);
  const vNew = splitHeads(linear(ctx, `${p}.attention.self.value`, x), c.numHeads, hd);
  // prefix tuning: BertSelfAttention puts past_key_value in front of its own keys / values ([B, nh, V+S, hd])
  const { k, v } = withPrefix(ctx, i, kNew, vNew);
  const y = mergeHeads(attend(ctx, q, k, v, bias, 1 / Math.sqrt(hd), c.attnDropout)); // [B, S, C]
  const a = dropout(ctx, linear(ctx, `${p}.attention.output.dense`, y), c.hiddenDropout);
  x = layerNorm(ctx, `${p}.attention.output.LayerNorm`, tf.add(a, x), c.layerNormEps);
  // feed-forward
  const h = activation(c.hiddenAct, linear(ctx, `${p}.intermediate.dense`, x)); // [B, S, I]
  const o = dropout(ctx, linear(ctx, `${p}.output.dense`, h), c.hiddenDropout);
  return layerNorm(ctx, `${p}.output.LayerNorm`, tf.add(o, x), c.layerNormEps);
}

/**
 * Embeddings + encoder of a BERT-style model under `base`, given the position embeddings to add ([S, C] or
 * [B, S, C]): BERT counts positions from 0, RoBERTa from its padding_idx + 1. Returns [B, S, C], S = P + T.
 */
export function encode(
  c: BertConfig, ctx: Ctx, base: string, input: ForwardInput, positionEmbeds: (S: number, past: number) => tf.Tensor,
): tf.Tensor {
  const [B, T] = input.inputIds.shape;
  const C = c.hiddenSize;
  // Prompt tuning prepends to the word embeddings; position and token-type embeddings are added after,
  // so virtual tokens take positions too (PEFT passes inputs_embeds to the embeddings module).
  let x = prependPrefix(ctx, embedding(ctx, `${base}.embeddings.word_embeddings`, input.inputIds)); // [B, S, C]
  const S = x.shape[1]!;
  // Prefix tuning's V keys come first: the embeddings take positions from past_key_values_length on.
  const past = prefixLength(ctx);
  x = tf.add(x, positionEmbeds(S, past));
  // token_type_ids default to zeros: add row 0 of the token-type table everywhere.
  x = tf.add(x, tf.slice(ctx.get(`${base}.embeddings.token_type_embeddings.weight`), [0, 0], [1, C]));
  x = dropout(ctx, layerNorm(ctx, `${base}.embeddings.LayerNorm`, x, c.layerNormEps), c.hiddenDropout);
  const bias = attentionBias(prefixMask(ctx, input.attentionMask, B, T), B, S, false, past); // padding keys only
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${base}.encoder.layer.${i}`;
    x = block(ctx, p, x, [bias], (h, [b]) => encoderLayer(c, ctx, p, i, h, b));
  }
  return x; // [B, S, C]
}

function hidden(c: BertConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  return encode(c, ctx, 'bert', input, (S, past) => positions(ctx, 'bert.embeddings.position_embeddings', S, past));
}

function head(c: BertConfig, task: TaskType, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  const [B] = x.shape;
  const C = c.hiddenSize;
  if (task !== 'SEQ_CLS') return linear(ctx, 'classifier', dropout(ctx, x, c.classifierDropout)); // [B, S, num_labels]
  // pooler: tanh(dense(hidden at position 0)), the [CLS] slot or the first virtual token
  const first = tf.slice(x, [0, 0, 0], [B, 1, C]).reshape([B, C]);
  const pooled = tf.tanh(linear(ctx, 'bert.pooler.dense', first));
  return linear(ctx, 'classifier', dropout(ctx, pooled, c.classifierDropout)); // [B, num_labels]
}

function className(_c: BertConfig, task: TaskType): string | undefined {
  if (task === 'SEQ_CLS') return 'BertForSequenceClassification';
  return task === 'TOKEN_CLS' ? 'BertForTokenClassification' : undefined;
}

/** BertPreTrainedModel._init_weights (RoBERTa's too) for a parameter `name` of an encoder under `base`. */
export function initBertParam(name: string, shape: number[], c: BertConfig, rng: Rng, base: string): Float32Array {
  // Linear / Embedding ~ N(0, initializer_range), biases 0, LayerNorm weight 1 / bias 0, the word embedding's
  // padding_idx row 0.
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('LayerNorm.weight')) return new Float32Array(n).fill(1);
  if (name.endsWith('.bias')) return new Float32Array(n);
  const w = rng.fillNormal(n, c.initializerRange);
  if (name === `${base}.embeddings.word_embeddings.weight` && c.padTokenId !== null && c.padTokenId < shape[0]) {
    w.fill(0, c.padTokenId * shape[1], (c.padTokenId + 1) * shape[1]);
  }
  return w;
}

export const bert: ArchitectureSpec<BertConfig> = {
  id: 'bert',
  modelTypes: ['bert'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for bert.
  peftDefaults: () => ({ lora: ['query', 'value'], adalora: ['query', 'value'], ia3: ['key', 'value', 'output.dense'], ia3Feedforward: ['output.dense'] }),
  // attention.output.dense is attention's (roles are tried head, attention, mlp); output.dense is the FFN's.
  roles: { attention: /\.attention\./, mlp: /\.(intermediate|output)\.dense$/, head: /^(classifier|bert\.pooler\.dense)$/ },
  ffnSize: (c) => c.intermediateSize,
  mlpKind: 'plain',
  seqClsPooling: 'first',
  parseConfig,
  modules,
  heads: () => ({ classifier: 'classifier' }),
  tied: () => ({}),
  basePrefix: 'bert.',
  initParam: (name, shape, c, rng) => initBertParam(name, shape, c, rng, 'bert'),
  hidden,
  head,
};

/**
 * RoBERTa (RobertaForSequenceClassification, RobertaForTokenClassification), following transformers 4.43's modeling_roberta.py: BERT's
 * encoder (bert.ts) under `roberta.`, without a pooler, with two differences that reach the logits:
 * - positions come from the input ids, not the mask: m = (ids != padding_idx), position = cumsum(m) * m +
 *   padding_idx (padding_idx = pad_token_id, 1 for roberta-base), so real tokens count from padding_idx + 1 and
 *   pad ids take the padding row; the position table has max_position_embeddings = 512 + 2 rows;
 * - the SEQ_CLS head is RobertaClassificationHead: out_proj(tanh(dense(x[:, 0]))) on the <s> slot.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import { encode, encoderModules, initBertParam, parseBertLike, type BertConfig } from './bert';
import { dropout, linear, type Ctx } from './layers';
import { TreeBuilder, type ArchitectureSpec } from './spec';
import type { ForwardInput, TaskType } from './types';

export type RobertaConfig = BertConfig;

function parseConfig(raw: Record<string, unknown>): RobertaConfig {
  // RobertaConfig's defaults: pad 1, bos 0, eos 2.
  const c = parseBertLike(raw, 'roberta', { padTokenId: 1 });
  if (c.padTokenId === null) {
    throw new TypeError('config.json: pad_token_id is null, but RoBERTa needs it: its position ids count from padding_idx = pad_token_id (1 for roberta-base)');
  }
  return { ...c, bosTokenId: raw.bos_token_id === undefined ? 0 : c.bosTokenId, eosTokenId: raw.eos_token_id === undefined ? 2 : c.eosTokenId };
}

function className(_c: RobertaConfig, task: TaskType): string | undefined {
  if (task === 'SEQ_CLS') return 'RobertaForSequenceClassification';
  return task === 'TOKEN_CLS' ? 'RobertaForTokenClassification' : undefined;
}

function modules(c: RobertaConfig, task: TaskType) {
  const C = c.hiddenSize;
  const t = new TreeBuilder();
  t.add('', className(c, task)!);
  encoderModules(t, c, 'roberta', 'Roberta'); // RobertaModel(add_pooling_layer=False)
  if (task === 'TOKEN_CLS') {
    t.add('dropout', 'Dropout');
    t.linear('classifier', C, c.numLabels);
    return t.rows;
  }
  t.add('classifier', 'RobertaClassificationHead');
  t.linear('classifier.dense', C, C);
  t.add('classifier.dropout', 'Dropout');
  t.linear('classifier.out_proj', C, c.numLabels);
  return t.rows;
}

/**
 * Position embeddings [B, S, C] as RobertaEmbeddings picks them. From the ids (create_position_ids_from_input_ids,
 * prefix tuning's `past` added to the count); with prompt tuning PEFT passes inputs_embeds, so RoBERTa cannot
 * see pads and every position counts: padding_idx + 1 + (0..S-1).
 */
export function robertaPositions(c: RobertaConfig, ctx: Ctx, input: ForwardInput, S: number, past: number): tf.Tensor {
  const pad = c.padTokenId!;
  const table = ctx.get('roberta.embeddings.position_embeddings.weight');
  const [B, T] = input.inputIds.shape;
  if (pad + past + S >= table.shape[0]) {
    throw new EngineError(
      'BAD_ARGUMENT',
      `A sequence of ${S} tokens${past ? ` (+${past} prefix)` : ''} needs RoBERTa position ${pad + past + S}, but this model has ${table.shape[0]} position rows (positions start after padding_idx ${pad}): use a max length of at most ${table.shape[0] - pad - 1 - past}.`,
    );
  }
  let ids: tf.Tensor; // int32 [B, S] or [S]
  if (ctx.hooks.prefixEmbeds) ids = tf.range(pad + 1, pad + 1 + S, 1, 'int32');
  else {
    const m = tf.notEqual(input.inputIds, pad).toInt(); // [B, T]
    ids = tf.add(tf.mul(tf.add(tf.cumsum(m, 1), past), m), pad).toInt();
  }
  const rows = tf.gather(table, ids.reshape([-1]));
  return ctx.hooks.prefixEmbeds ? rows : rows.reshape([B, T, table.shape[1]!]);
}

function hidden(c: RobertaConfig, _task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor {
  return encode(c, ctx, 'roberta', input, (S, past) => robertaPositions(c, ctx, input, S, past));
}

function head(c: RobertaConfig, task: TaskType, ctx: Ctx, x: tf.Tensor): tf.Tensor {
  if (task === 'TOKEN_CLS') return linear(ctx, 'classifier', dropout(ctx, x, c.classifierDropout)); // [B, S, num_labels]
  const [B] = x.shape;
  const C = c.hiddenSize;
  // RobertaClassificationHead: the <s> slot (or the first virtual token), dropout, dense, tanh, dropout, out_proj.
  const first = tf.slice(x, [0, 0, 0], [B, 1, C]).reshape([B, C]);
  const h = tf.tanh(linear(ctx, 'classifier.dense', dropout(ctx, first, c.classifierDropout)));
  return linear(ctx, 'classifier.out_proj', dropout(ctx, h, c.classifierDropout)); // [B, num_labels]
}

export const roberta: ArchitectureSpec<RobertaConfig> = {
  id: 'roberta',
  modelTypes: ['roberta'],
  className,
  // PEFT 0.15.2's LoRA / AdaLoRA / IA3 / IA3 feedforward mappings for roberta (AdaLoRA's differs from LoRA's).
  peftDefaults: () => ({
    lora: ['query', 'value'], adalora: ['query', 'key', 'value', 'dense'], ia3: ['key', 'value', 'output.dense'], ia3Feedforward: ['output.dense'],
  }),
  // attention.output.dense is attention's (roles are tried head, attention, mlp); output.dense is the FFN's.
  roles: { attention: /\.attention\./, mlp: /\.(intermediate|output)\.dense$/, head: /^classifier(\.|$)/ },
  ffnSize: (c) => c.intermediateSize,
  mlpKind: 'plain',
  seqClsPooling: 'first',
  parseConfig,
  modules,
  // PEFT's SEQ_CLS "all-linear" skips the module named "classifier", which here is the head module, not a
  // Linear: its dense / out_proj stay targeted, as in PEFT (see target_modules_arch.json).
  heads: (_c, task) => ({ classifier: 'classifier', ...(task === 'SEQ_CLS' ? { labelsLinear: 'classifier.out_proj' } : {}) }),
  tied: () => ({}),
  basePrefix: 'roberta.',
  initParam: (name, shape, c, rng) => initBertParam(name, shape, c, rng, 'roberta'),
  hidden,
  head,
};

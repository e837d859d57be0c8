/**
 * PrefixTuningConfig (peft_type PREFIX_TUNING) in camelCase with PEFT 0.15.2 defaults, validation, the exact
 * adapter_config.json PEFT writes, and the model facts PEFT derives for it (prefixDims): for grouped-query
 * attention the prefix has num_key_value_heads heads, so token_dim and num_attention_heads are the key/value
 * width and head count, not the model's hidden size and query heads.
 */
import { quoteValue } from '../../quote';
import { EngineError } from '../../errors';
import type { ArchConfig, TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { checkPromptLearning, PROMPT_LEARNING_SCHEMA, promptLearningJson } from '../prompt-learning';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';

export interface PrefixTuningConfig {
  peftType: 'PREFIX_TUNING';
  taskType: TaskType;
  /** Required, as in PEFT (its default is None). */
  numVirtualTokens: number;
  /** Hidden size of the projection; null = token_dim (PEFT fills it from the model). */
  encoderHiddenSize: number | null;
  /** Reparameterize the prefix: table = Linear(Tanh(Linear(embedding))) instead of a table of its own. */
  prefixProjection: boolean;
  numTransformerSubmodules: number | null;
  tokenDim: number | null;
  numLayers: number | null;
  numAttentionHeads: number | null;
  /** PEFT >= 0.16 files: the SEQ_CLS head (trained beside the prefix in any case). */
  modulesToSave?: string[] | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** PrefixTuningConfig's fields (PEFT 0.15.2). */
export const PREFIX_TUNING_SCHEMA: readonly Field[] = [
  ...PROMPT_LEARNING_SCHEMA,
  { key: 'prefixProjection', name: 'prefix_projection', kind: 'bool', default: false, ui: 'basic', help: 'Train an embedding and a 2-layer MLP (Linear, Tanh, Linear) that produce the prefix, instead of the prefix itself.' },
  { key: 'encoderHiddenSize', name: 'encoder_hidden_size', kind: 'int', default: null, min: 1, nullable: true, ui: 'basic', help: 'Hidden size of that MLP (empty: token_dim).' },
];

export const PREFIX_TUNING_DEFAULTS: Omit<PrefixTuningConfig, 'taskType' | 'numVirtualTokens'> = {
  ...(defaults(PREFIX_TUNING_SCHEMA) as Omit<PrefixTuningConfig, 'taskType' | 'numVirtualTokens' | 'peftType'>),
  peftType: 'PREFIX_TUNING',
};

/** Defaults + overrides, validated. */
export function prefixTuningConfig(
  p: Partial<PrefixTuningConfig> & Pick<PrefixTuningConfig, 'taskType' | 'numVirtualTokens'>,
): PrefixTuningConfig {
  return validate({ ...PREFIX_TUNING_DEFAULTS, ...p, peftType: 'PREFIX_TUNING' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value. */
export function validate(cfg: PrefixTuningConfig): PrefixTuningConfig {
  checkPromptLearning(cfg, 'prefix tuning', { tokenCls: true });
  checkAll(PREFIX_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>);
  return cfg;
}

/** What the prefix looks like on a model: V positions, L layers, H key/value heads of dim D (token_dim = H * D). */
export interface PrefixDims {
  numVirtualTokens: number;
  numLayers: number;
  heads: number;
  headDim: number;
  tokenDim: number;
}

/**
 * PEFT's _prepare_prompt_learning_config for PREFIX_TUNING: num_layers, token_dim = hidden size and
 * num_attention_heads from the model, then for grouped-query models token_dim = token_dim // heads * kv_heads
 * and num_attention_heads = kv_heads. The prefix's head dim is token_dim / num_attention_heads, which must be
 * the attention's own (PEFT assumes hidden_size / num_attention_heads; an explicit head_dim breaks that).
 */
export function prefixDims(c: ArchConfig, numVirtualTokens: number): PrefixDims {
  const kv = (c as ArchConfig & { numKvHeads?: number }).numKvHeads ?? c.numHeads;
  const headDim = (c as ArchConfig & { headDim?: number }).headDim ?? c.hiddenSize / c.numHeads;
  const peftHeadDim = Math.floor(c.hiddenSize / c.numHeads);
  if (peftHeadDim !== headDim) {
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `Prefix tuning needs head_dim = hidden_size / num_attention_heads (PEFT sizes the prefix so), but this model has head_dim ${headDim} and hidden_size / num_attention_heads = ${c.hiddenSize / c.numHeads}.`,
    );
  }
  return { numVirtualTokens, numLayers: c.numLayers, heads: kv, headDim, tokenDim: peftHeadDim * kv };
}

/** The projection's hidden size as PEFT resolves it: encoder_hidden_size, or token_dim (the key/value width) when None. */
export function prefixEncoderHiddenSize(cfg: PrefixTuningConfig, tokenDim: number): number {
  return cfg.encoderHiddenSize ?? tokenDim;
}

/** The adapter_config.json PEFT 0.15.2 writes (keys sorted, inference_mode true as in save_pretrained). */
export function toAdapterConfigJson(cfg: PrefixTuningConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  const tokenDim = extras.tokenDim ?? cfg.tokenDim;
  return sortKeys({
    ...writeFields(PREFIX_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...promptLearningJson(cfg, extras),
    encoder_hidden_size: cfg.encoderHiddenSize ?? tokenDim ?? null,
    ...commonJson('PREFIX_TUNING', cfg, { ...extras, task: extras.task ?? cfg.taskType }),
  });
}

/** Reads a PEFT-saved PREFIX_TUNING adapter_config.json object. */
export function fromAdapterConfigJson(json: Record<string, unknown>): PrefixTuningConfig {
  if (json.peft_type !== 'PREFIX_TUNING') bad(`Expected peft_type 'PREFIX_TUNING', got ${quoteValue(json.peft_type)}.`);
  const fields = readFields(PREFIX_TUNING_SCHEMA, json) as unknown as PrefixTuningConfig;
  // num_virtual_tokens has no default in PEFT: a file without it is not a usable adapter.
  if (json.num_virtual_tokens === undefined) (fields as { numVirtualTokens: unknown }).numVirtualTokens = null;
  return validate({ ...fields, ...(readCommon(json) as { taskType: TaskType }), peftType: 'PREFIX_TUNING' });
}

/**
 * PromptEncoderConfig (peft_type P_TUNING) in camelCase with PEFT 0.15.2 defaults, validation, and the exact
 * adapter_config.json PEFT writes. As for prompt tuning, token_dim / num_layers / num_attention_heads /
 * num_transformer_submodules come from the model (`extras`); encoder_hidden_size None becomes token_dim, as
 * PEFT's _prepare_prompt_learning_config fills it.
 */
import { quoteValue } from '../../quote';
import type { TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { checkPromptLearning, PROMPT_LEARNING_SCHEMA, promptLearningJson } from '../prompt-learning';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';

export type EncoderReparameterizationType = 'MLP' | 'LSTM';

export interface PTuningConfig {
  peftType: 'P_TUNING';
  taskType: TaskType;
  /** Required, as in PEFT (its default is None). */
  numVirtualTokens: number;
  encoderReparameterizationType: EncoderReparameterizationType;
  /** null = token_dim (PEFT fills it from the model). */
  encoderHiddenSize: number | null;
  /** LSTM layers; the MLP always has its 3 Linear layers (PEFT warns and ignores a different value). */
  encoderNumLayers: number;
  /** Dropout between LSTM layers while training (nn.LSTM's dropout); unused by the MLP. */
  encoderDropout: number;
  numTransformerSubmodules: number | null;
  tokenDim: number | null;
  numLayers: number | null;
  numAttentionHeads: number | null;
  /** PEFT >= 0.16 files: the SEQ_CLS head (trained beside the prompt in any case). */
  modulesToSave?: string[] | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** PromptEncoderConfig's fields (PEFT 0.15.2). */
export const P_TUNING_SCHEMA: readonly Field[] = [
  ...PROMPT_LEARNING_SCHEMA,
  { key: 'encoderReparameterizationType', name: 'encoder_reparameterization_type', kind: 'choice', choices: ['MLP', 'LSTM'], default: 'MLP', ui: 'basic', help: 'The prompt encoder: an MLP (recommended), or a bidirectional LSTM followed by an MLP.' },
  { key: 'encoderHiddenSize', name: 'encoder_hidden_size', kind: 'int', default: null, min: 1, nullable: true, ui: 'basic', help: 'Hidden size of the prompt encoder (empty: the model\'s hidden size).' },
  { key: 'encoderNumLayers', name: 'encoder_num_layers', kind: 'int', default: 2, min: 1, ui: 'advanced', help: 'LSTM layers (the MLP always has 3 Linear layers).' },
  { key: 'encoderDropout', name: 'encoder_dropout', kind: 'float', default: 0, min: 0, max: 1, exclusiveMax: true, float: true, ui: 'advanced', help: 'Dropout between LSTM layers while training.' },
];

export const P_TUNING_DEFAULTS: Omit<PTuningConfig, 'taskType' | 'numVirtualTokens'> = {
  ...(defaults(P_TUNING_SCHEMA) as Omit<PTuningConfig, 'taskType' | 'numVirtualTokens' | 'peftType'>),
  peftType: 'P_TUNING',
};

/** Defaults + overrides, validated. */
export function pTuningConfig(p: Partial<PTuningConfig> & Pick<PTuningConfig, 'taskType' | 'numVirtualTokens'>): PTuningConfig {
  return validate({ ...P_TUNING_DEFAULTS, ...p, peftType: 'P_TUNING' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: PTuningConfig): PTuningConfig {
  checkPromptLearning(cfg, 'P-tuning', { seq2seq: true });
  if (cfg.encoderReparameterizationType !== 'MLP' && cfg.encoderReparameterizationType !== 'LSTM') {
    // PromptEncoder's own message for an unknown type.
    bad(`Prompt encoder type not recognized (encoder_reparameterization_type ${quoteValue(cfg.encoderReparameterizationType)}). Please use one of MLP (recommended) or LSTM.`);
  }
  checkAll(P_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>);
  return cfg;
}

/** The encoder's hidden size as PEFT resolves it: encoder_hidden_size, or token_dim when None. */
export function encoderHiddenSize(cfg: PTuningConfig, tokenDim: number): number {
  return cfg.encoderHiddenSize ?? tokenDim;
}

/** The adapter_config.json PEFT 0.15.2 writes (keys sorted, inference_mode true as in save_pretrained). */
export function toAdapterConfigJson(cfg: PTuningConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  const tokenDim = extras.tokenDim ?? cfg.tokenDim;
  return sortKeys({
    ...writeFields(P_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...promptLearningJson(cfg, extras),
    encoder_hidden_size: cfg.encoderHiddenSize ?? tokenDim ?? null,
    ...commonJson('P_TUNING', cfg, { ...extras, task: extras.task ?? cfg.taskType }),
  });
}

/** Reads a PEFT-saved P_TUNING adapter_config.json object. */
export function fromAdapterConfigJson(json: Record<string, unknown>): PTuningConfig {
  if (json.peft_type !== 'P_TUNING') bad(`Expected peft_type 'P_TUNING', got ${quoteValue(json.peft_type)}.`);
  const fields = readFields(P_TUNING_SCHEMA, json) as unknown as PTuningConfig;
  // num_virtual_tokens has no default in PEFT: a file without it is not a usable adapter.
  if (json.num_virtual_tokens === undefined) (fields as { numVirtualTokens: unknown }).numVirtualTokens = null;
  return validate({ ...fields, ...(readCommon(json) as { taskType: TaskType }), peftType: 'P_TUNING' });
}

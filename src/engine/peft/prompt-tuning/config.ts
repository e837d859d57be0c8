/**
 * PromptTuningConfig in camelCase with PEFT 0.15.2 defaults, validation, and the exact adapter_config.json PEFT
 * writes. token_dim / num_layers / num_attention_heads / num_transformer_submodules are None in a fresh PEFT
 * config and filled from the model by get_peft_model; here they come in through `extras` (or a parsed file).
 */
import { EngineError } from '../../errors';
import type { TaskType } from '../../models/types';
import type { AdapterConfigExtras } from '../config';

export type PromptTuningInit = 'RANDOM' | 'SAMPLE_VOCAB' | 'TEXT';

export interface PromptTuningConfig {
  peftType: 'PROMPT_TUNING';
  taskType: TaskType;
  /** Required, as in PEFT (its default is None). */
  numVirtualTokens: number;
  promptTuningInit: PromptTuningInit;
  promptTuningInitText: string | null;
  tokenizerNameOrPath: string | null;
  tokenizerKwargs: Record<string, unknown> | null;
  /** 1 for decoder-only and encoder-only models (2 only for seq2seq, which PEFT Studio does not do). */
  numTransformerSubmodules: number | null;
  tokenDim: number | null;
  numLayers: number | null;
  numAttentionHeads: number | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

export const PROMPT_TUNING_DEFAULTS: Omit<PromptTuningConfig, 'taskType' | 'numVirtualTokens'> = {
  peftType: 'PROMPT_TUNING',
  promptTuningInit: 'RANDOM',
  promptTuningInitText: null,
  tokenizerNameOrPath: null,
  tokenizerKwargs: null,
  numTransformerSubmodules: null,
  tokenDim: null,
  numLayers: null,
  numAttentionHeads: null,
};

function bad(msg: string): never {
  throw new EngineError('BAD_PEFT_CONFIG', msg);
}

/** Defaults + overrides, validated. */
export function promptTuningConfig(
  p: Partial<PromptTuningConfig> & Pick<PromptTuningConfig, 'taskType' | 'numVirtualTokens'>,
): PromptTuningConfig {
  return validate({ ...PROMPT_TUNING_DEFAULTS, ...p, peftType: 'PROMPT_TUNING' });
}

const posIntOrNull = (v: unknown) => v === null || v === undefined || (typeof v === 'number' && Number.isInteger(v) && v > 0);

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: PromptTuningConfig): PromptTuningConfig {
  if (cfg.taskType !== 'CAUSAL_LM' && cfg.taskType !== 'SEQ_CLS') {
    bad(`task_type ${JSON.stringify(cfg.taskType)} is not supported for prompt tuning; use CAUSAL_LM or SEQ_CLS.`);
  }
  const n = cfg.numVirtualTokens as unknown;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    bad(`num_virtual_tokens must be an integer >= 1; got ${JSON.stringify(n ?? null)}.`);
  }
  if (!['RANDOM', 'SAMPLE_VOCAB', 'TEXT'].includes(cfg.promptTuningInit)) {
    bad(`prompt_tuning_init must be 'RANDOM', 'SAMPLE_VOCAB' or 'TEXT'; got ${JSON.stringify(cfg.promptTuningInit)}.`);
  }
  const text = cfg.promptTuningInit === 'TEXT';
  // PromptTuningConfig.__post_init__, with PEFT's wording.
  if (text && !cfg.tokenizerNameOrPath) {
    bad(`When prompt_tuning_init='TEXT', tokenizer_name_or_path can't be ${cfg.tokenizerNameOrPath === '' ? '' : 'None'}.`);
  }
  if (text && (cfg.promptTuningInitText === null || cfg.promptTuningInitText === undefined)) {
    bad("When prompt_tuning_init='TEXT', prompt_tuning_init_text can't be None.");
  }
  // PEFT would divide by zero on an empty init text (no tokens to repeat); say so up front.
  if (text && cfg.promptTuningInitText === '') bad('prompt_tuning_init_text is empty; give the text whose tokens initialise the prompt.');
  if (cfg.tokenizerKwargs && Object.keys(cfg.tokenizerKwargs).length && !text) {
    bad("tokenizer_kwargs only valid when using prompt_tuning_init='TEXT'.");
  }
  if (!posIntOrNull(cfg.numTransformerSubmodules) || (cfg.numTransformerSubmodules ?? 1) !== 1) {
    bad(`num_transformer_submodules must be 1 for ${cfg.taskType} (got ${cfg.numTransformerSubmodules}).`);
  }
  for (const [k, v] of [
    ['token_dim', cfg.tokenDim],
    ['num_layers', cfg.numLayers],
    ['num_attention_heads', cfg.numAttentionHeads],
  ] as const) {
    if (!posIntOrNull(v)) bad(`${k} must be a positive integer; got ${JSON.stringify(v)}.`);
  }
  return cfg;
}

/** The adapter_config.json PEFT 0.15.2 writes (keys sorted, inference_mode true as in save_pretrained). */
export function toAdapterConfigJson(cfg: PromptTuningConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  return {
    auto_mapping: null,
    base_model_name_or_path: extras.baseModelNameOrPath ?? cfg.baseModelNameOrPath ?? null,
    inference_mode: true,
    num_attention_heads: extras.numAttentionHeads ?? cfg.numAttentionHeads,
    num_layers: extras.numLayers ?? cfg.numLayers,
    // get_peft_model fills None with 1 for every task but SEQ_2_SEQ_LM.
    num_transformer_submodules: cfg.numTransformerSubmodules ?? 1,
    num_virtual_tokens: cfg.numVirtualTokens,
    peft_type: 'PROMPT_TUNING',
    prompt_tuning_init: cfg.promptTuningInit,
    prompt_tuning_init_text: cfg.promptTuningInitText,
    revision: extras.revision !== undefined ? extras.revision : (cfg.revision ?? null),
    task_type: extras.task ?? cfg.taskType,
    token_dim: extras.tokenDim ?? cfg.tokenDim,
    tokenizer_kwargs: cfg.tokenizerKwargs,
    tokenizer_name_or_path: cfg.tokenizerNameOrPath,
  };
}

/** Reads a PEFT-saved PROMPT_TUNING adapter_config.json object. */
export function fromAdapterConfigJson(json: Record<string, unknown>): PromptTuningConfig {
  if (json.peft_type !== 'PROMPT_TUNING') bad(`Expected peft_type 'PROMPT_TUNING', got ${JSON.stringify(json.peft_type)}.`);
  const pick = <T>(k: string, d: T): T => (json[k] === undefined ? d : (json[k] as T));
  return validate({
    peftType: 'PROMPT_TUNING',
    taskType: pick('task_type', null as unknown as TaskType),
    numVirtualTokens: pick('num_virtual_tokens', null as unknown as number),
    promptTuningInit: pick('prompt_tuning_init', 'RANDOM'),
    promptTuningInitText: pick('prompt_tuning_init_text', null),
    tokenizerNameOrPath: pick('tokenizer_name_or_path', null),
    tokenizerKwargs: pick('tokenizer_kwargs', null),
    numTransformerSubmodules: pick('num_transformer_submodules', null),
    tokenDim: pick('token_dim', null),
    numLayers: pick('num_layers', null),
    numAttentionHeads: pick('num_attention_heads', null),
    baseModelNameOrPath: pick('base_model_name_or_path', null),
    revision: pick('revision', null),
  });
}

/**
 * PromptTuningConfig in camelCase with PEFT 0.15.2 defaults, validation, and the exact adapter_config.json PEFT
 * writes. token_dim / num_layers / num_attention_heads / num_transformer_submodules are None in a fresh PEFT
 * config and filled from the model by get_peft_model; here they come in through `extras` (or a parsed file).
 */
import { quoteValue } from '../../quote';
import type { TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { checkPromptLearning, PROMPT_LEARNING_SCHEMA, promptLearningJson } from '../prompt-learning';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';

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
  /** 1 for decoder-only and encoder-only models, 2 for SEQ_2_SEQ_LM (PEFT allocates a prompt per stack). */
  numTransformerSubmodules: number | null;
  tokenDim: number | null;
  numLayers: number | null;
  numAttentionHeads: number | null;
  /** PEFT >= 0.16 files: the SEQ_CLS head (trained beside the prompt in any case, see prompt-tuning/head.ts). */
  modulesToSave?: string[] | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** PromptTuningConfig's fields (PEFT 0.15.2). */
export const PROMPT_TUNING_SCHEMA: readonly Field[] = [
  ...PROMPT_LEARNING_SCHEMA,
  { key: 'promptTuningInit', name: 'prompt_tuning_init', kind: 'choice', choices: ['RANDOM', 'SAMPLE_VOCAB', 'TEXT'], default: 'RANDOM', ui: 'basic', help: 'RANDOM: N(0, 1); SAMPLE_VOCAB: embeddings of random tokens; TEXT: embeddings of a text\'s tokens.' },
  { key: 'promptTuningInitText', name: 'prompt_tuning_init_text', kind: 'text', default: null, nullable: true, ui: 'basic', help: 'The text whose tokens initialise the prompt (TEXT init).' },
  { key: 'tokenizerNameOrPath', name: 'tokenizer_name_or_path', kind: 'text', default: null, nullable: true, ui: 'none', help: 'Tokenizer of the TEXT init (the base model\'s).' },
  { key: 'tokenizerKwargs', name: 'tokenizer_kwargs', kind: 'object', default: null, nullable: true, ui: 'none', help: 'Arguments of that tokenizer.' },
];

export const PROMPT_TUNING_DEFAULTS: Omit<PromptTuningConfig, 'taskType' | 'numVirtualTokens'> = {
  ...(defaults(PROMPT_TUNING_SCHEMA) as Omit<PromptTuningConfig, 'taskType' | 'numVirtualTokens' | 'peftType'>),
  peftType: 'PROMPT_TUNING',
};

/** Defaults + overrides, validated. */
export function promptTuningConfig(
  p: Partial<PromptTuningConfig> & Pick<PromptTuningConfig, 'taskType' | 'numVirtualTokens'>,
): PromptTuningConfig {
  return validate({ ...PROMPT_TUNING_DEFAULTS, ...p, peftType: 'PROMPT_TUNING' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: PromptTuningConfig): PromptTuningConfig {
  checkPromptLearning(cfg, 'prompt tuning', { seq2seq: true });
  if (!['RANDOM', 'SAMPLE_VOCAB', 'TEXT'].includes(cfg.promptTuningInit)) {
    bad(`prompt_tuning_init must be 'RANDOM', 'SAMPLE_VOCAB' or 'TEXT'; got ${quoteValue(cfg.promptTuningInit)}.`);
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
  checkAll(PROMPT_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>);
  return cfg;
}

/** The adapter_config.json PEFT 0.15.2 writes (keys sorted, inference_mode true as in save_pretrained). */
export function toAdapterConfigJson(cfg: PromptTuningConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  return sortKeys({
    ...writeFields(PROMPT_TUNING_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...promptLearningJson(cfg, extras),
    ...commonJson('PROMPT_TUNING', cfg, { ...extras, task: extras.task ?? cfg.taskType }),
  });
}

/** Reads a PEFT-saved PROMPT_TUNING adapter_config.json object. */
export function fromAdapterConfigJson(json: Record<string, unknown>): PromptTuningConfig {
  if (json.peft_type !== 'PROMPT_TUNING') bad(`Expected peft_type 'PROMPT_TUNING', got ${quoteValue(json.peft_type)}.`);
  const fields = readFields(PROMPT_TUNING_SCHEMA, json) as unknown as PromptTuningConfig;
  // num_virtual_tokens has no default in PEFT: a file without it is not a usable adapter.
  if (json.num_virtual_tokens === undefined) (fields as { numVirtualTokens: unknown }).numVirtualTokens = null;
  return validate({ ...fields, ...(readCommon(json) as { taskType: TaskType }), peftType: 'PROMPT_TUNING' });
}

/**
 * LoraConfig in camelCase with PEFT 0.15.2 defaults, its validation, and the exact adapter_config.json PEFT
 * writes (and reads). Only what PEFT Studio can train is accepted; PEFT features it lacks are refused by name
 * instead of being silently ignored, because ignoring them would give a different model.
 */
import { describeValue, quoteValue } from '../../quote';
import type { TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';
import { hasHeadModules, withSeqClsHeads, type TargetSpec } from '../targets';

export type LoraBias = 'none' | 'all' | 'lora_only';
/** true = PEFT's default (kaiming-uniform A, zero B); false = random B too; 'gaussian' = N(0, 1/r) A. */
export type InitLoraWeights = boolean | 'gaussian';

export interface LoraConfig {
  peftType: 'LORA';
  /** null = a bare PeftModel (no task head handling). */
  taskType: TaskType | null;
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: TargetSpec;
  excludeModules: TargetSpec;
  layersToTransform: number | number[] | null;
  layersPattern: string | string[] | null;
  bias: LoraBias;
  useRslora: boolean;
  /** DoRA: a learned magnitude per output row (peft/tuners/lora/dora.py). */
  useDora: boolean;
  initLoraWeights: InitLoraWeights;
  modulesToSave: string[] | null;
  /** Per-module r by PEFT's pattern keys (get_pattern_key: `(.*\.)?(key)$`, first key in order wins). */
  rankPattern: Record<string, number>;
  /** Per-module lora_alpha, same keys. */
  alphaPattern: Record<string, number>;
  /** As given; PEFT overrides it per layer (Conv1D -> true, Linear -> false), see TargetResolution.fanInFanOut. */
  fanInFanOut: boolean;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** LoraConfig's fields (PEFT 0.15.2), from which validation, adapter_config.json, CLI flags and the form come. */
export const LORA_SCHEMA: readonly Field[] = [
  { key: 'r', name: 'r', kind: 'int', default: 8, min: 0, exclusiveMin: true, ui: 'basic', help: 'Rank of the update: A is [r, in], B [out, r].' },
  { key: 'loraAlpha', name: 'lora_alpha', kind: 'float', default: 8, min: 0, exclusiveMin: true, ui: 'basic', help: 'The update is scaled by lora_alpha / r (lora_alpha / sqrt(r) with rsLoRA).' },
  { key: 'loraDropout', name: 'lora_dropout', kind: 'float', default: 0, min: 0, max: 1, exclusiveMax: true, float: true, ui: 'basic', help: 'Dropout on the input of the LoRA branch.' },
  { key: 'targetModules', name: 'target_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'target-regex', help: 'Modules to adapt: names or name suffixes, a regex (full match), or all-linear.' },
  { key: 'excludeModules', name: 'exclude_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'exclude-regex', help: 'Modules to leave out (names or suffixes, or a regex).' },
  { key: 'layersToTransform', name: 'layers_to_transform', kind: 'layers', default: null, ui: 'none', help: 'Only these layer indices.' },
  { key: 'layersPattern', name: 'layers_pattern', kind: 'targets', default: null, ui: 'none', help: 'Name of the layer list (h, layers, layer).' },
  { key: 'bias', name: 'bias', kind: 'choice', choices: ['none', 'all', 'lora_only'], default: 'none', ui: 'advanced', help: 'Which biases train with the adapter.' },
  { key: 'useRslora', name: 'use_rslora', kind: 'bool', default: false, ui: 'advanced', help: 'Rank-stabilized LoRA: scale by lora_alpha / sqrt(r).' },
  { key: 'useDora', name: 'use_dora', kind: 'bool', default: false, ui: 'advanced', help: 'DoRA: learn a magnitude per output row on top of the LoRA direction.' },
  { key: 'initLoraWeights', name: 'init_lora_weights', kind: 'choice', choices: [true, false, 'gaussian'], default: true, ui: 'advanced', help: 'true: A kaiming-uniform, B zero (starts as the base model); gaussian: A ~ N(0, 1/r).' },
  { key: 'modulesToSave', name: 'modules_to_save', kind: 'names', default: null, ui: 'advanced', help: 'Modules trained in full and saved with the adapter (classification heads are added).' },
  { key: 'rankPattern', name: 'rank_pattern', kind: 'object', default: {}, ui: 'advanced', help: 'Per-module r, e.g. {"c_attn": 4}: keys are regexes matched at the end of module names.' },
  { key: 'alphaPattern', name: 'alpha_pattern', kind: 'object', default: {}, ui: 'advanced', help: 'Per-module lora_alpha, keys as rank_pattern.' },
  { key: 'fanInFanOut', name: 'fan_in_fan_out', kind: 'bool', default: false, ui: 'none', help: 'Weights stored [in, out] (GPT-2 Conv1D); set per module automatically.' },
  // Written with these values by PEFT 0.15.2; any other value is a feature PEFT Studio does not implement.
  { key: 'autoMapping', name: 'auto_mapping', kind: 'fixed', default: null, help: '' },
  { key: 'cordaConfig', name: 'corda_config', kind: 'fixed', default: null, help: '' },
  { key: 'evaConfig', name: 'eva_config', kind: 'fixed', default: null, help: '' },
  { key: 'layerReplication', name: 'layer_replication', kind: 'fixed', default: null, help: '' },
  { key: 'loftqConfig', name: 'loftq_config', kind: 'fixed', default: {}, help: '' },
  { key: 'loraBias', name: 'lora_bias', kind: 'fixed', default: false, help: '' },
  { key: 'megatronConfig', name: 'megatron_config', kind: 'fixed', default: null, help: '' },
  { key: 'megatronCore', name: 'megatron_core', kind: 'fixed', default: 'megatron.core', help: '' },
  { key: 'trainableTokenIndices', name: 'trainable_token_indices', kind: 'fixed', default: null, help: '' },
  // Fields of later PEFT releases (read, never written: 0.15.2's field set loads everywhere).
  { key: 'targetParameters', name: 'target_parameters', kind: 'fixed', default: null, write: false, help: '' },
  { key: 'useQalora', name: 'use_qalora', kind: 'fixed', default: false, write: false, help: '' },
  { key: 'aloraInvocationTokens', name: 'alora_invocation_tokens', kind: 'fixed', default: null, write: false, help: '' },
  { key: 'arrowConfig', name: 'arrow_config', kind: 'fixed', default: null, write: false, help: '' },
];

export const LORA_DEFAULTS: LoraConfig = { peftType: 'LORA', taskType: null, ...defaults(LORA_SCHEMA) } as unknown as LoraConfig;

/** PEFT init_lora_weights values that exist but that PEFT Studio cannot reproduce yet. */
const OTHER_PEFT_INITS = /^(pissa|pissa_niter_\d+|olora|loftq|eva|corda)$/;




/** Defaults + overrides, validated. */
export function loraConfig(p: Partial<LoraConfig> = {}): LoraConfig {
  return validate({ ...LORA_DEFAULTS, ...p, peftType: 'LORA' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: LoraConfig): LoraConfig {
  const { r } = cfg;
  // PEFT's own wording for r (LoraLayer.update_layer).
  if (typeof r !== 'number') bad(`r must be a number (a positive integer); got ${describeValue(r)}.`);
  if (!Number.isInteger(r) || r <= 0) {
    bad(`\`r\` should be a positive integer value but the value passed is ${r}`);
  }
  const init = cfg.initLoraWeights as unknown;
  if (init !== true && init !== false && init !== 'gaussian' && typeof init === 'string' && OTHER_PEFT_INITS.test(init)) {
    bad(`init_lora_weights='${init}' is a PEFT option that PEFT Studio does not support yet; use true, false or 'gaussian'.`);
  }
  checkAll(LORA_SCHEMA, cfg as unknown as Record<string, unknown>);
  if (cfg.taskType !== null && cfg.taskType !== 'CAUSAL_LM' && cfg.taskType !== 'SEQ_CLS' && cfg.taskType !== 'TOKEN_CLS' && cfg.taskType !== 'SEQ_2_SEQ_LM') {
    bad(`task_type ${quoteValue(cfg.taskType)} is not supported; use CAUSAL_LM, SEQ_CLS, TOKEN_CLS or SEQ_2_SEQ_LM.`);
  }
  for (const [field, pattern] of [['rank_pattern', cfg.rankPattern], ['alpha_pattern', cfg.alphaPattern]] as const) {
    for (const [k, v] of Object.entries(pattern)) {
      if (typeof v !== 'number' || !(v > 0) || (field === 'rank_pattern' && !Number.isInteger(v))) {
        bad(`${field}["${k}"] must be a positive ${field === 'rank_pattern' ? 'integer' : 'number'}; got ${quoteValue(v)}.`);
      }
      try {
        new RegExp(k);
      } catch {
        bad(`${field} key ${quoteValue(k)} is not a valid regular expression.`);
      }
    }
  }
  const idx = cfg.layersToTransform as unknown;
  const lp = cfg.layersPattern as unknown;
  // LoraConfig.__post_init__ checks, with PEFT's wording.
  const strTarget = typeof cfg.targetModules === 'string';
  if (strTarget && idx !== null && idx !== undefined) bad('`layers_to_transform` cannot be used when `target_modules` is a str.');
  if (strTarget && lp !== null && lp !== undefined) bad('`layers_pattern` cannot be used when `target_modules` is a str.');
  const hasPattern = typeof lp === 'string' ? lp.length > 0 : Array.isArray(lp) && lp.length > 0;
  const hasIdx = idx !== null && idx !== undefined && (!Array.isArray(idx) || idx.length > 0);
  if (hasPattern && !hasIdx) bad('When `layers_pattern` is specified, `layers_to_transform` must also be specified.');
  return cfg;
}

/** PEFT's get_pattern_key: the first key (in order) that matches the end of the module name, as a regex. */
export function patternKey(keys: string[], name: string): string | null {
  for (const k of keys) if (new RegExp(`^(.*\\.)?(${k})$`).test(name)) return k;
  return null;
}

/** r and lora_alpha for one module under rank_pattern / alpha_pattern. */
export function rankAndAlpha(cfg: Pick<LoraConfig, 'r' | 'loraAlpha' | 'rankPattern' | 'alphaPattern'>, module: string): { r: number; alpha: number } {
  const rk = patternKey(Object.keys(cfg.rankPattern), module);
  const ak = patternKey(Object.keys(cfg.alphaPattern), module);
  return { r: rk === null ? cfg.r : cfg.rankPattern[rk], alpha: ak === null ? cfg.loraAlpha : cfg.alphaPattern[ak] };
}

/** modules_to_save as PEFT saves it: SEQ_CLS and TOKEN_CLS append "classifier", "score" (PeftModelFor*Classification). */
export function savedModulesToSave(cfg: LoraConfig): string[] | null {
  if (!hasHeadModules(cfg.taskType)) return cfg.modulesToSave ? [...cfg.modulesToSave] : null;
  return withSeqClsHeads(cfg.modulesToSave);
}

/**
 * The adapter_config.json PEFT 0.15.2 writes for this config (keys sorted like json.dumps(sort_keys=True)).
 * Sets (target_modules, exclude_modules) are written as sorted lists; inference_mode is true as in save_pretrained.
 */
export function toAdapterConfigJson(cfg: LoraConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  return sortKeys({
    ...writeFields(LORA_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...commonJson('LORA', cfg, extras),
    fan_in_fan_out: extras.fanInFanOut ?? cfg.fanInFanOut,
    modules_to_save: extras.modulesToSave !== undefined ? extras.modulesToSave : savedModulesToSave(cfg),
    target_modules: sortedIfList(extras.resolvedTargetModules ?? cfg.targetModules),
  });
}

function sortedIfList<T>(v: T): T {
  return (Array.isArray(v) ? [...v].sort() : v) as T;
}

/** Reads a PEFT-saved LoRA adapter_config.json object; refuses features PEFT Studio does not implement. */
export function fromAdapterConfigJson(json: Record<string, unknown>): LoraConfig {
  if (json.peft_type !== 'LORA') bad(`Expected peft_type 'LORA', got ${quoteValue(json.peft_type)}.`);
  // What PEFT saved already includes the SEQ_CLS heads; kept as saved so a round trip is exact.
  return validate({ ...(readFields(LORA_SCHEMA, json) as unknown as LoraConfig), ...readCommon(json), peftType: 'LORA' });
}

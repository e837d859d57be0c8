/**
 * LoraConfig in camelCase with PEFT 0.15.2 defaults, its validation, and the exact adapter_config.json PEFT
 * writes (and reads). Only what PEFT Studio can train is accepted; PEFT features it lacks are refused by name
 * instead of being silently ignored, because ignoring them would give a different model.
 */
import { EngineError } from '../../errors';
import type { TaskType } from '../../models/types';
import type { AdapterConfigExtras } from '../config';
import { withSeqClsHeads, type TargetSpec } from '../targets';

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
  initLoraWeights: InitLoraWeights;
  modulesToSave: string[] | null;
  /** As given; PEFT overrides it per layer (Conv1D -> true, Linear -> false), see TargetResolution.fanInFanOut. */
  fanInFanOut: boolean;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

export const LORA_DEFAULTS: LoraConfig = {
  peftType: 'LORA',
  taskType: null,
  r: 8,
  loraAlpha: 8,
  loraDropout: 0,
  targetModules: null,
  excludeModules: null,
  layersToTransform: null,
  layersPattern: null,
  bias: 'none',
  useRslora: false,
  initLoraWeights: true,
  modulesToSave: null,
  fanInFanOut: false,
};

/** PEFT init_lora_weights values that exist but that PEFT Studio cannot reproduce yet. */
const OTHER_PEFT_INITS = /^(pissa|pissa_niter_\d+|olora|loftq|eva|corda)$/;

function bad(msg: string): never {
  throw new EngineError('BAD_PEFT_CONFIG', msg);
}

function isStrList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function checkSpec(field: string, v: unknown): void {
  if (v === null || v === undefined || typeof v === 'string') return;
  if (!isStrList(v)) bad(`${field} must be a regex string, a list of module names, or null; got ${JSON.stringify(v)}.`);
  if (v.some((s) => s === '')) bad(`${field} must not contain an empty module name.`);
}

/** Defaults + overrides, validated. */
export function loraConfig(p: Partial<LoraConfig> = {}): LoraConfig {
  return validate({ ...LORA_DEFAULTS, ...p, peftType: 'LORA' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: LoraConfig): LoraConfig {
  const { r, loraAlpha, loraDropout } = cfg;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) {
    bad(`\`r\` should be a positive integer value but the value passed is ${r}`);
  }
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha) || loraAlpha <= 0) {
    bad(`lora_alpha must be a positive number; got ${loraAlpha}.`);
  }
  if (typeof loraDropout !== 'number' || !(loraDropout >= 0 && loraDropout < 1)) {
    bad(`lora_dropout must be in [0, 1); got ${loraDropout}.`);
  }
  if (!['none', 'all', 'lora_only'].includes(cfg.bias)) {
    bad(`bias must be 'none', 'all' or 'lora_only'; got ${JSON.stringify(cfg.bias)}.`);
  }
  const init = cfg.initLoraWeights as unknown;
  if (init !== true && init !== false && init !== 'gaussian') {
    if (typeof init === 'string' && OTHER_PEFT_INITS.test(init)) {
      bad(`init_lora_weights='${init}' is a PEFT option that PEFT Studio does not support yet; use true, false or 'gaussian'.`);
    }
    bad(`init_lora_weights must be true, false or 'gaussian'; got ${JSON.stringify(init)}.`);
  }
  if (typeof cfg.useRslora !== 'boolean') bad(`use_rslora must be true or false; got ${JSON.stringify(cfg.useRslora)}.`);
  if (typeof cfg.fanInFanOut !== 'boolean') bad(`fan_in_fan_out must be true or false; got ${JSON.stringify(cfg.fanInFanOut)}.`);
  if (cfg.taskType !== null && cfg.taskType !== 'CAUSAL_LM' && cfg.taskType !== 'SEQ_CLS') {
    bad(`task_type ${JSON.stringify(cfg.taskType)} is not supported; use CAUSAL_LM or SEQ_CLS.`);
  }
  checkSpec('target_modules', cfg.targetModules);
  checkSpec('exclude_modules', cfg.excludeModules);
  const idx = cfg.layersToTransform as unknown;
  const isIdx = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (idx !== null && idx !== undefined && !(isIdx(idx) || (Array.isArray(idx) && idx.every(isIdx)))) {
    bad(`layers_to_transform must be a layer index or a list of layer indices (integers >= 0); got ${JSON.stringify(idx)}.`);
  }
  const lp = cfg.layersPattern as unknown;
  if (lp !== null && lp !== undefined && typeof lp !== 'string' && !isStrList(lp)) {
    bad(`layers_pattern must be a string or a list of strings; got ${JSON.stringify(lp)}.`);
  }
  const mts = cfg.modulesToSave as unknown;
  if (mts !== null && mts !== undefined && (!isStrList(mts) || mts.some((s) => s === ''))) {
    bad(`modules_to_save must be a list of module names or null; got ${JSON.stringify(mts)}.`);
  }
  // LoraConfig.__post_init__ checks, with PEFT's wording.
  const strTarget = typeof cfg.targetModules === 'string';
  if (strTarget && idx !== null && idx !== undefined) bad('`layers_to_transform` cannot be used when `target_modules` is a str.');
  if (strTarget && lp !== null && lp !== undefined) bad('`layers_pattern` cannot be used when `target_modules` is a str.');
  const hasPattern = typeof lp === 'string' ? lp.length > 0 : Array.isArray(lp) && lp.length > 0;
  const hasIdx = idx !== null && idx !== undefined && (!Array.isArray(idx) || idx.length > 0);
  if (hasPattern && !hasIdx) bad('When `layers_pattern` is specified, `layers_to_transform` must also be specified.');
  return cfg;
}

/** modules_to_save as PEFT saves it: SEQ_CLS appends "classifier", "score" (PeftModelForSequenceClassification). */
export function savedModulesToSave(cfg: LoraConfig): string[] | null {
  if (cfg.taskType !== 'SEQ_CLS') return cfg.modulesToSave ? [...cfg.modulesToSave] : null;
  return withSeqClsHeads(cfg.modulesToSave);
}

function sortedIfList<T>(v: T): T {
  return (Array.isArray(v) ? [...v].sort() : v) as T;
}

/**
 * The adapter_config.json PEFT 0.15.2 writes for this config (keys sorted like json.dumps(sort_keys=True)).
 * Sets (target_modules, exclude_modules) are written as sorted lists; inference_mode is true as in save_pretrained.
 */
export function toAdapterConfigJson(cfg: LoraConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  const target = extras.resolvedTargetModules ?? cfg.targetModules;
  const fan = extras.fanInFanOut ?? cfg.fanInFanOut;
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: extras.baseModelNameOrPath ?? cfg.baseModelNameOrPath ?? null,
    bias: cfg.bias,
    corda_config: null,
    eva_config: null,
    exclude_modules: sortedIfList(cfg.excludeModules),
    fan_in_fan_out: fan,
    inference_mode: true,
    init_lora_weights: cfg.initLoraWeights,
    layer_replication: null,
    layers_pattern: cfg.layersPattern,
    layers_to_transform: cfg.layersToTransform,
    loftq_config: {},
    lora_alpha: cfg.loraAlpha,
    lora_bias: false,
    lora_dropout: cfg.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: extras.modulesToSave !== undefined ? extras.modulesToSave : savedModulesToSave(cfg),
    peft_type: 'LORA',
    r: cfg.r,
    rank_pattern: {},
    revision: extras.revision !== undefined ? extras.revision : (cfg.revision ?? null),
    target_modules: sortedIfList(target),
    task_type: extras.task !== undefined ? extras.task : cfg.taskType,
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: cfg.useRslora,
  };
}

/** Keys a PEFT LoraConfig (0.15 and later) may carry, with the value that means "feature off". */
const OFF_VALUES: Record<string, unknown> = {
  use_dora: false,
  rank_pattern: {},
  alpha_pattern: {},
  layer_replication: null,
  lora_bias: false,
  megatron_config: null,
  loftq_config: {},
  eva_config: null,
  corda_config: null,
  trainable_token_indices: null,
  target_parameters: null,
  use_qalora: false,
  alora_invocation_tokens: null,
  arrow_config: null,
};

function isOff(v: unknown, off: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (off !== null && typeof off === 'object') return typeof v === 'object' && Object.keys(v as object).length === 0;
  if (Array.isArray(v) && v.length === 0) return true;
  return v === off;
}

/** Reads a PEFT-saved LoRA adapter_config.json object; refuses features PEFT Studio does not implement. */
export function fromAdapterConfigJson(json: Record<string, unknown>): LoraConfig {
  if (json.peft_type !== 'LORA') bad(`Expected peft_type 'LORA', got ${JSON.stringify(json.peft_type)}.`);
  for (const [k, off] of Object.entries(OFF_VALUES)) {
    if (!isOff(json[k], off)) {
      bad(`adapter_config.json sets ${k}=${JSON.stringify(json[k])}, which PEFT Studio does not support yet.`);
    }
  }
  const pick = <T>(k: string, d: T): T => (json[k] === undefined ? d : (json[k] as T));
  return validate({
    peftType: 'LORA',
    taskType: pick('task_type', null),
    r: pick('r', LORA_DEFAULTS.r),
    loraAlpha: pick('lora_alpha', LORA_DEFAULTS.loraAlpha),
    loraDropout: pick('lora_dropout', LORA_DEFAULTS.loraDropout),
    targetModules: pick('target_modules', null),
    excludeModules: pick('exclude_modules', null),
    layersToTransform: pick('layers_to_transform', null),
    layersPattern: pick('layers_pattern', null),
    bias: pick('bias', LORA_DEFAULTS.bias),
    useRslora: pick('use_rslora', false),
    initLoraWeights: pick('init_lora_weights', true),
    // What PEFT saved already includes the SEQ_CLS heads; keep it as saved so a round trip is exact.
    modulesToSave: pick('modules_to_save', null),
    fanInFanOut: pick('fan_in_fan_out', false),
    baseModelNameOrPath: pick('base_model_name_or_path', null),
    revision: pick('revision', null),
  });
}

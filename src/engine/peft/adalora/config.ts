/**
 * AdaLoraConfig (PEFT 0.15.2) in camelCase: LoraConfig's fields, which AdaLoraConfig inherits, plus the rank
 * budget schedule (init_r, target_r, tinit, tfinal, deltaT, total_step), the importance EMAs (beta1, beta2),
 * orth_reg_weight and the rank_pattern training leaves behind. Validation uses PEFT's messages where PEFT raises;
 * adapter_config.json has exactly the field set AdaLoraConfig.to_dict() writes.
 *
 * The schema is spelled out here rather than derived from LoRA's: AdaLoRA's file must keep 0.15.2's field set
 * even when LoRA's schema grows, and several inherited fields mean something else here (rank_pattern holds
 * boolean masks, r and alpha_pattern are ignored by AdaLoRA's layers, as in PEFT).
 */
import { quoteValue } from '../../quote';
import type { TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';
import { hasHeadModules, withSeqClsHeads, type TargetSpec } from '../targets';

export type AdaLoraBias = 'none' | 'all' | 'lora_only';

export interface AdaLoraConfig {
  peftType: 'ADALORA';
  taskType: TaskType | null;
  /** LoraConfig's r: written, never used by AdaLoRA (PEFT warns when it is not 8). */
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: TargetSpec;
  excludeModules: TargetSpec;
  layersToTransform: number | number[] | null;
  layersPattern: string | string[] | null;
  bias: AdaLoraBias;
  /** Written; SVDLinear has no rsLoRA scaling, so PEFT ignores it. */
  useRslora: boolean;
  useDora: boolean;
  /** Truthy: E = 0, A and B ~ N(0, 0.02) (PEFT's reset_lora_parameters); false: all N(0, 1). */
  initLoraWeights: boolean | 'gaussian';
  modulesToSave: string[] | null;
  /** Written; AdaLoRA's layers take lora_alpha only, so PEFT ignores it. */
  alphaPattern: Record<string, number>;
  fanInFanOut: boolean;
  /** Average rank each module is pruned to by the end of the budget phase. */
  targetR: number;
  /** Rank every module starts with (lora_A [init_r, in], lora_E [init_r, 1], lora_B [out, init_r]). */
  initR: number;
  /** Steps of warmup before any pruning. */
  tinit: number;
  /** Steps at the end that train the final ranks without pruning. */
  tfinal: number;
  /** Steps between two budget allocations. */
  deltaT: number;
  /** EMA coefficient of the importance (sensitivity) score. */
  beta1: number;
  /** EMA coefficient of the importance's uncertainty. */
  beta2: number;
  orthRegWeight: number;
  /** Optimizer steps of the whole run; required (PEFT's default None raises). */
  totalStep: number | null;
  /** `<module>.lora_E` -> which of its init_r triplets are kept; written when training ends the budget phase. */
  rankPattern: Record<string, boolean[]> | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** AdaLoraConfig's fields (PEFT 0.15.2), in the order of the form. */
export const ADALORA_SCHEMA: readonly Field[] = [
  { key: 'initR', name: 'init_r', kind: 'int', default: 12, min: 1, ui: 'basic', help: 'Rank every adapted module starts with; pruning removes triplets (a column of A, a singular value, a row of B).' },
  { key: 'targetR', name: 'target_r', kind: 'int', default: 8, min: 0, ui: 'basic', help: 'Average rank per module left after pruning (the budget is target_r x modules).' },
  { key: 'totalStep', name: 'total_step', kind: 'int', default: null, nullable: true, min: 1, ui: 'basic', runSteps: true, help: 'Optimizer steps of the run; the budget schedule is laid out over them (empty: the run\'s max steps).' },
  { key: 'tinit', name: 'tinit', kind: 'int', default: 0, min: 0, ui: 'basic', help: 'Warmup steps before pruning starts.' },
  { key: 'tfinal', name: 'tfinal', kind: 'int', default: 0, min: 0, ui: 'basic', help: 'Final steps that train the chosen ranks without pruning.' },
  { key: 'deltaT', name: 'deltaT', kind: 'int', default: 1, min: 1, ui: 'advanced', help: 'Steps between two budget allocations during the pruning phase.' },
  { key: 'loraAlpha', name: 'lora_alpha', kind: 'float', default: 8, min: 0, ui: 'basic', help: 'The update is scaled by lora_alpha / init_r.' },
  { key: 'loraDropout', name: 'lora_dropout', kind: 'float', default: 0, min: 0, max: 1, exclusiveMax: true, float: true, ui: 'basic', help: 'Dropout on the input of the AdaLoRA branch.' },
  { key: 'beta1', name: 'beta1', kind: 'float', default: 0.85, min: 0, max: 1, exclusiveMin: true, exclusiveMax: true, float: true, ui: 'advanced', help: 'EMA coefficient of the importance score |p * grad|.' },
  { key: 'beta2', name: 'beta2', kind: 'float', default: 0.85, min: 0, max: 1, exclusiveMin: true, exclusiveMax: true, float: true, ui: 'advanced', help: 'EMA coefficient of the importance score\'s uncertainty.' },
  { key: 'orthRegWeight', name: 'orth_reg_weight', kind: 'float', default: 0.5, min: 0, exclusiveMin: true, float: true, ui: 'advanced', help: 'Weight of the orthogonality penalty ||A A^T - I|| + ||B^T B - I|| added to the loss.' },
  { key: 'targetModules', name: 'target_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'target-regex', help: 'Modules to adapt: names or name suffixes, a regex (full match), or all-linear.' },
  { key: 'excludeModules', name: 'exclude_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'exclude-regex', help: 'Modules to leave out (names or suffixes, or a regex).' },
  { key: 'layersToTransform', name: 'layers_to_transform', kind: 'layers', default: null, ui: 'none', help: 'Only these layer indices.' },
  { key: 'layersPattern', name: 'layers_pattern', kind: 'targets', default: null, ui: 'none', help: 'Name of the layer list (h, layers, layer).' },
  { key: 'bias', name: 'bias', kind: 'choice', choices: ['none', 'all', 'lora_only'], default: 'none', ui: 'advanced', help: 'Which biases train with the adapter.' },
  { key: 'initLoraWeights', name: 'init_lora_weights', kind: 'choice', choices: [true, false, 'gaussian'], default: true, ui: 'advanced', help: 'true: singular values 0, A and B ~ N(0, 0.02) (starts as the base model); false: all ~ N(0, 1).' },
  { key: 'modulesToSave', name: 'modules_to_save', kind: 'names', default: null, ui: 'advanced', help: 'Modules trained in full and saved with the adapter (classification heads are added).' },
  { key: 'rankPattern', name: 'rank_pattern', kind: 'object', default: null, nullable: true, ui: 'none', help: 'Kept triplets per module, written by training (keys <module>.lora_E).' },
  { key: 'r', name: 'r', kind: 'int', default: 8, min: 0, exclusiveMin: true, ui: 'none', help: 'LoraConfig\'s r; AdaLoRA uses init_r instead.' },
  { key: 'useRslora', name: 'use_rslora', kind: 'bool', default: false, ui: 'none', help: 'Ignored by AdaLoRA (as in PEFT).' },
  { key: 'useDora', name: 'use_dora', kind: 'bool', default: false, ui: 'none', help: 'AdaLoRA does not support DoRA.' },
  { key: 'alphaPattern', name: 'alpha_pattern', kind: 'object', default: {}, ui: 'none', help: 'Ignored by AdaLoRA (as in PEFT).' },
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

export const ADALORA_DEFAULTS: AdaLoraConfig = { peftType: 'ADALORA', taskType: null, ...defaults(ADALORA_SCHEMA) } as unknown as AdaLoraConfig;

/** Defaults + overrides, validated. */
export function adaLoraConfig(p: Partial<AdaLoraConfig> = {}): AdaLoraConfig {
  return validate({ ...ADALORA_DEFAULTS, ...p, peftType: 'ADALORA' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: AdaLoraConfig): AdaLoraConfig {
  const init = cfg.initR as unknown;
  // SVDLinear.update_layer's wording (r == 0 is legal for a pruned layer, but not as the starting rank).
  if (typeof init === 'number' && Number.isInteger(init) && init < 0) {
    bad(`\`r\` should be a positive integer or 0, but the value passed is ${init}`);
  }
  const total = cfg.totalStep as unknown;
  // LoraConfig.__post_init__ then AdaLoraConfig.__post_init__, in their order and words (Python truthiness:
  // layers_to_transform=0 counts as unset there).
  const strTarget = typeof cfg.targetModules === 'string';
  const idx = cfg.layersToTransform as unknown;
  const lp = cfg.layersPattern as unknown;
  if (strTarget && idx !== null && idx !== undefined) bad('`layers_to_transform` cannot be used when `target_modules` is a str.');
  if (strTarget && lp !== null && lp !== undefined) bad('`layers_pattern` cannot be used when `target_modules` is a str.');
  const hasPattern = typeof lp === 'string' ? lp.length > 0 : Array.isArray(lp) && lp.length > 0;
  const hasIdx = idx !== null && idx !== undefined && idx !== 0 && (!Array.isArray(idx) || idx.length > 0);
  if (hasPattern && !hasIdx) bad('When `layers_pattern` is specified, `layers_to_transform` must also be specified. ');
  if (cfg.useDora) bad('ADALORA does not support DoRA.');
  if (total === null || total === undefined || (typeof total === 'number' && total <= 0)) {
    bad('AdaLoRA does not work when `total_step` is None, supply a value > 0.');
  }
  checkAll(ADALORA_SCHEMA, cfg as unknown as Record<string, unknown>);
  if (cfg.tinit >= cfg.totalStep! - cfg.tfinal) {
    bad("The supplied schedule values don't allow for a budgeting phase. Decrease `tfinal`/`tinit` or increase `total_step`.");
  }
  // PEFT fails later (torch.kthvalue with k <= 0 at the first allocation); say so up front.
  if (cfg.targetR >= cfg.initR) bad(`target_r (${cfg.targetR}) must be smaller than init_r (${cfg.initR}): AdaLoRA prunes from init_r down to target_r.`);
  if (cfg.taskType !== null && cfg.taskType !== 'CAUSAL_LM' && cfg.taskType !== 'SEQ_CLS' && cfg.taskType !== 'TOKEN_CLS' && cfg.taskType !== 'SEQ_2_SEQ_LM') {
    bad(`task_type ${quoteValue(cfg.taskType)} is not supported; use CAUSAL_LM, SEQ_CLS, TOKEN_CLS or SEQ_2_SEQ_LM.`);
  }
  for (const [k, v] of Object.entries(cfg.rankPattern ?? {})) {
    if (!Array.isArray(v) || !v.every((b) => typeof b === 'boolean')) {
      bad(`rank_pattern["${k}"] must be a list of true/false (one per init_r triplet); got ${quoteValue(v)}.`);
    }
    if (v.length !== cfg.initR) bad(`rank_pattern["${k}"] has ${v.length} entries but init_r is ${cfg.initR}.`);
  }
  return cfg;
}

/** The module a rank_pattern key names: `<module>.lora_E` (as saved) or `<module>.lora_E.<adapter>` (in training). */
export function rankPatternModule(key: string): string {
  return key.replace(/\.lora_E(\.[^.]+)?$/, '');
}

/** The kept rank of every module rank_pattern names, by module name. */
export function keptRanks(rankPattern: Record<string, boolean[]> | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(rankPattern ?? {})) out.set(rankPatternModule(k), v.filter(Boolean).length);
  return out;
}

/** modules_to_save as PEFT saves it: SEQ_CLS and TOKEN_CLS append "classifier", "score" (PeftModelFor*Classification). */
export function savedModulesToSave(cfg: AdaLoraConfig): string[] | null {
  if (!hasHeadModules(cfg.taskType)) return cfg.modulesToSave ? [...cfg.modulesToSave] : null;
  return withSeqClsHeads(cfg.modulesToSave);
}

/**
 * The adapter_config.json PEFT 0.15.2 writes for this config (keys sorted). `extras.fields.rank_pattern` (what
 * training allocated) replaces the config's own.
 */
export function toAdapterConfigJson(cfg: AdaLoraConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  const target = extras.resolvedTargetModules ?? cfg.targetModules;
  return sortKeys({
    ...writeFields(ADALORA_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...commonJson('ADALORA', cfg, extras),
    fan_in_fan_out: extras.fanInFanOut ?? cfg.fanInFanOut,
    modules_to_save: extras.modulesToSave !== undefined ? extras.modulesToSave : savedModulesToSave(cfg),
    // A resolved list is already in PEFT's saved order (sorted set, or the default mapping's list as is).
    target_modules: extras.resolvedTargetModules !== undefined || !Array.isArray(target) ? target : [...target].sort(),
  });
}

/** Reads a PEFT-saved AdaLoRA adapter_config.json object; refuses features PEFT Studio does not implement. */
export function fromAdapterConfigJson(json: Record<string, unknown>): AdaLoraConfig {
  if (json.peft_type !== 'ADALORA') bad(`Expected peft_type 'ADALORA', got ${quoteValue(json.peft_type)}.`);
  return validate({ ...(readFields(ADALORA_SCHEMA, json) as unknown as AdaLoraConfig), ...readCommon(json), peftType: 'ADALORA' });
}

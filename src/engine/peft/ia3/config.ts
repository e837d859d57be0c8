/**
 * IA3Config in camelCase with PEFT 0.15.2 defaults, its validation (IA3Config.__post_init__) and the exact
 * adapter_config.json PEFT writes for it: the IA3Config dataclass fields plus PeftConfig's, nothing of LoRA's.
 */
import { quoteValue } from '../../quote';
import type { TaskType } from '../../models/types';
import { commonJson, readCommon, sortKeys } from '../common';
import { bad, checkAll, defaults, readFields, writeFields, type AdapterConfigExtras, type Field } from '../schema';
import { hasHeadModules, withSeqClsHeads, type TargetSpec } from '../targets';

export interface IA3Config {
  peftType: 'IA3';
  /** null = a bare PeftModel (no task head handling). */
  taskType: TaskType | null;
  targetModules: TargetSpec;
  excludeModules: TargetSpec;
  /** Targets whose INPUT is scaled (the rest scale their output): a list entry matches by plain endswith, a str by re.fullmatch. */
  feedforwardModules: TargetSpec;
  /** As given; PEFT overrides it per layer (Conv1D -> true, Linear -> false), see TargetResolution.fanInFanOut. */
  fanInFanOut: boolean;
  modulesToSave: string[] | null;
  /** true: every vector starts at 1 (the adapter starts as the base model); false: N(0, 1). */
  initIa3Weights: boolean;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** IA3Config's fields (PEFT 0.15.2), from which validation, adapter_config.json, CLI flags and the form come. */
export const IA3_SCHEMA: readonly Field[] = [
  { key: 'targetModules', name: 'target_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'target-regex', help: 'Modules to adapt: names or name suffixes, a regex (full match), or all-linear.' },
  { key: 'excludeModules', name: 'exclude_modules', kind: 'targets', default: null, ui: 'none', regexFlag: 'exclude-regex', help: 'Modules to leave out (names or suffixes, or a regex).' },
  // A list here is matched by plain endswith (no "." boundary), unlike target_modules.
  { key: 'feedforwardModules', name: 'feedforward_modules', kind: 'targets', default: null, ui: 'advanced', regexFlag: 'feedforward-regex', help: 'Targets whose input is scaled instead of their output: name endings or a regex (full match); a list must be a subset of target_modules.' },
  { key: 'fanInFanOut', name: 'fan_in_fan_out', kind: 'bool', default: false, ui: 'none', help: 'Weights stored [in, out] (GPT-2 Conv1D); set per module automatically.' },
  { key: 'modulesToSave', name: 'modules_to_save', kind: 'names', default: null, ui: 'advanced', help: 'Modules trained in full and saved with the adapter (classification heads are added).' },
  { key: 'initIa3Weights', name: 'init_ia3_weights', kind: 'bool', default: true, ui: 'advanced', help: 'Start every vector at 1, so the adapter starts as the base model (false: random N(0, 1), discouraged by PEFT).' },
  // Written with this value by PEFT 0.15.2; any other value is a feature PEFT Studio does not implement.
  { key: 'autoMapping', name: 'auto_mapping', kind: 'fixed', default: null, help: '' },
];

export const IA3_DEFAULTS: IA3Config = { peftType: 'IA3', taskType: null, ...defaults(IA3_SCHEMA) } as unknown as IA3Config;

/** Defaults + overrides, validated. */
export function ia3Config(p: Partial<IA3Config> = {}): IA3Config {
  return validate({ ...IA3_DEFAULTS, ...p, peftType: 'IA3' });
}

/** Throws EngineError('BAD_PEFT_CONFIG') naming the bad value; PEFT's own messages where PEFT raises. */
export function validate(cfg: IA3Config): IA3Config {
  checkAll(IA3_SCHEMA, cfg as unknown as Record<string, unknown>);
  if (cfg.taskType !== null && cfg.taskType !== 'CAUSAL_LM' && cfg.taskType !== 'SEQ_CLS' && cfg.taskType !== 'TOKEN_CLS' && cfg.taskType !== 'SEQ_2_SEQ_LM') {
    bad(`task_type ${quoteValue(cfg.taskType)} is not supported; use CAUSAL_LM, SEQ_CLS, TOKEN_CLS or SEQ_2_SEQ_LM.`);
  }
  // IA3Config.__post_init__: only when both are lists (sets); a str or None on either side is not checked here.
  const t = cfg.targetModules;
  const ff = cfg.feedforwardModules;
  if (Array.isArray(t) && Array.isArray(ff) && !ff.every((m) => t.includes(m))) {
    bad('`feedforward_modules` should be a subset of `target_modules`');
  }
  return cfg;
}

/** modules_to_save as PEFT saves it: SEQ_CLS and TOKEN_CLS append "classifier", "score" (PeftModelFor*Classification). */
export function savedModulesToSave(cfg: IA3Config): string[] | null {
  if (!hasHeadModules(cfg.taskType)) return cfg.modulesToSave ? [...cfg.modulesToSave] : null;
  return withSeqClsHeads(cfg.modulesToSave);
}

function sortedIfList<T>(v: T): T {
  return (Array.isArray(v) ? [...new Set(v)].sort() : v) as T;
}

/**
 * The adapter_config.json PEFT 0.15.2 writes for this config (keys sorted like json.dumps(sort_keys=True)).
 * Sets (target_modules, exclude_modules, feedforward_modules) are written as sorted lists; what target
 * resolution filled in (architecture defaults) comes in `extras` (feedforward_modules in extras.fields).
 */
export function toAdapterConfigJson(cfg: IA3Config, extras: AdapterConfigExtras): Record<string, unknown> {
  const ff = extras.fields && 'feedforward_modules' in extras.fields ? extras.fields.feedforward_modules : cfg.feedforwardModules;
  return sortKeys({
    ...writeFields(IA3_SCHEMA, cfg as unknown as Record<string, unknown>),
    ...commonJson('IA3', cfg, extras),
    fan_in_fan_out: extras.fanInFanOut ?? cfg.fanInFanOut,
    feedforward_modules: sortedIfList(ff),
    modules_to_save: extras.modulesToSave !== undefined ? extras.modulesToSave : savedModulesToSave(cfg),
    target_modules: sortedIfList(extras.resolvedTargetModules ?? cfg.targetModules),
  });
}

/** Reads a PEFT-saved IA3 adapter_config.json object; refuses features PEFT Studio does not implement. */
export function fromAdapterConfigJson(json: Record<string, unknown>): IA3Config {
  if (json.peft_type !== 'IA3') bad(`Expected peft_type 'IA3', got ${quoteValue(json.peft_type)}.`);
  // What PEFT saved already includes the SEQ_CLS heads; kept as saved so a round trip is exact.
  return validate({ ...(readFields(IA3_SCHEMA, json) as unknown as IA3Config), ...readCommon(json), peftType: 'IA3' });
}

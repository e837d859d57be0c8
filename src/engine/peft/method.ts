/**
 * What a PEFT method is to the rest of PEFT Studio, as PEFT's `register_peft_method` makes it known to PEFT: its
 * config schema and validation, how it reads adapter_config.json, what it adapts on a model (PEFT's trainable
 * line) and how it wraps a model. Each method lives in its own folder (`<method>/{config,layer,model,index}.ts`)
 * and is registered by one line in registry.ts.
 */
import type { Model, ModuleInfo, TaskType } from '../models/types';
import type { PeftModel } from './model';
import type { ParamCount } from './params';
import type { AdapterConfigExtras, Field } from './schema';

/** Fields every method's config has. */
export interface PeftConfigBase {
  peftType: string;
  /** null = a bare PeftModel (no task head handling). */
  taskType: TaskType | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
}

/** The model a config is resolved against: its named_modules() tree and config.json. */
export interface MethodContext {
  modules: ModuleInfo[];
  rawConfig: Record<string, unknown>;
  task: TaskType;
}

/** What a config adapts on a model, with PEFT's trainable / all numbers. */
export interface TargetReport {
  matched: string[];
  modulesToSave: string[];
  count: ParamCount;
  /** Module -> how the method treats it (IA3: 'feedforward' scales the input), for the module tree. */
  roles?: Record<string, string>;
  /** Prompt methods: the virtual tokens prepended to every input. */
  virtualTokens?: number;
  /** Adapter methods: target_modules as adapter_config.json will record it (PEFT's minimal suffixes). */
  savedTargetModules?: string | string[];
}

export interface PeftMethod<C extends PeftConfigBase = PeftConfigBase> {
  /** PEFT's peft_type, e.g. "LORA". */
  readonly peftType: C['peftType'];
  /** Name in the studio, e.g. "LoRA". */
  readonly label: string;
  /** One line for the method picker. */
  readonly description: string;
  /** Learning rate of PEFT's own examples for the method (the form's default). */
  readonly learningRate: number;
  /** Prompt-learning method: virtual tokens instead of target modules. */
  readonly prompt: boolean;
  readonly tasks: readonly TaskType[];
  readonly schema: readonly Field[];
  /** Defaults + overrides, validated with PEFT's messages. */
  config(p: Partial<C>): C;
  /** Reads a PEFT-saved adapter_config.json object; refuses features PEFT Studio does not implement. */
  fromJson(json: Record<string, unknown>): C;
  /** The adapter_config.json object PEFT 0.15.2 writes (keys sorted), with model facts in `extras`. */
  toJson(cfg: C, extras: AdapterConfigExtras): Record<string, unknown>;
  /** What the config adapts on a model (throws TARGETS_NOT_FOUND / BAD_PEFT_CONFIG with PEFT's wording). */
  resolve(ctx: MethodContext, cfg: C): TargetReport;
  /** The config to build a model with before loading saved tensors into it (their init no longer matters). */
  forLoading?(cfg: C): C;
  /**
   * Why PEFT's merge_and_unload cannot fold this method into the base weights (prompt methods); absent for methods
   * whose PeftModel implements mergedParam.
   */
  readonly unmergeable?: string;
  /** Wraps a model; `encode` tokenizes text inits (prompt tuning's TEXT). */
  create(model: Model, cfg: C, o: { seed: number; encode?: (text: string) => number[] }): PeftModel;
}

/** The schema of a method as plain data, for the page (no functions). */
export interface MethodInfo {
  peftType: string;
  label: string;
  description: string;
  learningRate: number;
  prompt: boolean;
  tasks: TaskType[];
  schema: Field[];
}

export function methodInfo(m: PeftMethod): MethodInfo {
  return {
    peftType: m.peftType, label: m.label, description: m.description, learningRate: m.learningRate, prompt: m.prompt,
    tasks: [...m.tasks], schema: m.schema.map((f) => ({ ...f })),
  };
}

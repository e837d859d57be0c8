/**
 * The schema of a PEFT method's config: every field with PEFT's name, its type, default, range or choices and a
 * one-line help. Validation of single fields, adapter_config.json reading and writing, the CLI flags (PEFT's field
 * names in kebab case) and the studio's form all come from it; a method adds only PEFT's cross-field checks
 * (its `__post_init__`). Pure data and functions: no tfjs, so the schema can travel to the page as JSON.
 */
import { EngineError } from '../errors';
import { describeValue, quoteValue } from '../quote';
import type { TaskType } from '../models/types';

export type FieldKind =
  /** integer / float with optional bounds */
  | 'int' | 'float'
  | 'bool'
  /** one of `choices` (strings, booleans or null) */
  | 'choice'
  | 'text'
  /** target_modules style: list of names, a regex string, or null */
  | 'targets'
  /** layers_to_transform: an index or a list of indices, or null */
  | 'layers'
  /** a list of strings or null (modules_to_save, feedforward_modules as a list) */
  | 'names'
  /** a JSON object (rank_pattern, alpha_pattern) */
  | 'object'
  /** written with a fixed value, never set by the person (PEFT fields the method does not use) */
  | 'fixed';

export interface Field {
  /** The engine config's property (camelCase). */
  key: string;
  /** PEFT's field name, as in adapter_config.json. */
  name: string;
  kind: FieldKind;
  default: unknown;
  choices?: readonly unknown[];
  min?: number;
  max?: number;
  /** The bound is excluded (x > min rather than x >= min). */
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  /** Whether null is accepted. */
  nullable?: boolean;
  help: string;
  /** Where the studio shows it: in the method form, under "Advanced", or not at all (targets have their own panel). */
  ui?: 'basic' | 'advanced' | 'none';
  /** Written as a float (Python repr with ".0") in adapter_config.json. */
  float?: boolean;
  /** A CLI flag taking the same field as a regex string (target_modules -> --target-regex). */
  regexFlag?: string;
  /** Not read from adapter_config.json (set from the model, e.g. token_dim). */
  fromModel?: boolean;
  /** Read (and refused when set) but not written: fields of later PEFT releases that 0.15.2 does not have. */
  write?: false;
  /** The run's optimizer steps when left empty (AdaLoRA's total_step): the studio fills it from the run. */
  runSteps?: boolean;
}

/** What adapter_config.json holds beyond the config itself: model facts and what target resolution produced. */
export interface AdapterConfigExtras {
  baseModelNameOrPath: string | null;
  revision?: string | null;
  task?: TaskType | null;
  /** Prompt methods: hidden size, layer and head counts of the base model. */
  tokenDim?: number;
  numLayers?: number;
  numAttentionHeads?: number;
  /** Adapter methods: TargetResolution.savedTargetModules. */
  resolvedTargetModules?: string | string[];
  /** Adapter methods: TargetResolution.savedModulesToSave. */
  modulesToSave?: string[] | null;
  /** LoRA: TargetResolution.fanInFanOut (null = keep the config's value). */
  fanInFanOut?: boolean | null;
  /** Anything else a method writes from its trained state (AdaLoRA's rank_pattern). */
  fields?: Record<string, unknown>;
}

export function bad(msg: string): never {
  throw new EngineError('BAD_PEFT_CONFIG', msg);
}

const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isIdx = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** A value as a message quotes it (bounded: a value from a file may be nested or long without limit). */
const show = (v: unknown) => (typeof v === 'number' ? String(v) : quoteValue(v));
/** A value of the wrong type, with its JSON type: `the string "8"`. */
const typed = (v: unknown) => (typeof v === 'number' ? String(v) : describeValue(v));

function range(f: Field): string {
  const lo = f.min === undefined ? '' : `${f.exclusiveMin ? '>' : '>='} ${f.min}`;
  const hi = f.max === undefined ? '' : `${f.exclusiveMax ? '<' : '<='} ${f.max}`;
  return [lo, hi].filter(Boolean).join(' and ');
}

/** Checks one value against its field; the message names PEFT's field. */
export function checkField(f: Field, v: unknown): void {
  if (v === null || v === undefined) {
    if (f.nullable || f.kind === 'targets' || f.kind === 'layers' || f.kind === 'names' || f.kind === 'fixed') return;
    bad(`${f.name} must be set.`);
  }
  switch (f.kind) {
    case 'int':
    case 'float': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (f.kind === 'int' && !Number.isInteger(v))) {
        bad(`${f.name} must be ${f.kind === 'int' ? 'an integer' : 'a number'}; got ${typed(v)}.`);
      }
      const low = f.min !== undefined && (f.exclusiveMin ? v <= f.min : v < f.min);
      const high = f.max !== undefined && (f.exclusiveMax ? v >= f.max : v > f.max);
      if (low || high) bad(`${f.name} must be ${range(f)}; got ${v}.`);
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean') bad(`${f.name} must be true or false; got ${typed(v)}.`);
      return;
    case 'choice':
      if (!f.choices!.includes(v)) bad(`${f.name} must be one of ${f.choices!.map(show).join(', ')}; got ${show(v)}.`);
      return;
    case 'text':
      if (typeof v !== 'string') bad(`${f.name} must be a string; got ${typed(v)}.`);
      return;
    case 'targets':
      if (typeof v === 'string') return;
      if (!isStrList(v)) bad(`${f.name} must be a regex string, a list of module names, or null; got ${typed(v)}.`);
      if (v.some((s) => s === '')) bad(`${f.name} must not contain an empty module name.`);
      return;
    case 'layers':
      if (!(isIdx(v) || (Array.isArray(v) && v.every(isIdx)))) {
        bad(`${f.name} must be a layer index or a list of layer indices (integers >= 0); got ${typed(v)}.`);
      }
      return;
    case 'names':
      if (!isStrList(v) || v.some((s) => s === '')) bad(`${f.name} must be a list of module names or null; got ${typed(v)}.`);
      return;
    case 'object':
      if (typeof v !== 'object' || Array.isArray(v)) bad(`${f.name} must be a JSON object; got ${typed(v)}.`);
      return;
    case 'fixed':
      return;
  }
}

/** The schema's defaults as a config object (engine keys). */
export function defaults(schema: readonly Field[]): Record<string, unknown> {
  return Object.fromEntries(schema.map((f) => [f.key, structuredClone(f.default)]));
}

/** Checks every field of a config. */
export function checkAll(schema: readonly Field[], cfg: Record<string, unknown>): void {
  for (const f of schema) checkField(f, cfg[f.key]);
}

/** Reads every schema field from adapter_config.json (absent: the default); `fixed` fields must hold their value. */
export function readFields(schema: readonly Field[], json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema) {
    const v = json[f.name];
    if (f.kind === 'fixed') {
      if (!isOff(v, f.default)) bad(`adapter_config.json sets ${f.name}=${show(v)}, which PEFT Studio does not support yet.`);
      continue;
    }
    out[f.key] = v === undefined || (f.fromModel && v === null) ? structuredClone(f.default) : v;
  }
  return out;
}

/** An absent, null, empty or default value: the feature is off. */
function isOff(v: unknown, off: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (off !== null && typeof off === 'object') return typeof v === 'object' && Object.keys(v as object).length === 0;
  if (Array.isArray(v) && v.length === 0) return true;
  return v === off;
}

/** Writes every schema field under PEFT's name (config values, or the fixed value). */
export function writeFields(schema: readonly Field[], cfg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema) {
    if (f.write === false) continue;
    const v = f.kind === 'fixed' ? f.default : cfg[f.key];
    out[f.name] = v === undefined ? null : Array.isArray(v) && (f.kind === 'targets' || f.kind === 'names') ? [...v].sort() : v;
  }
  return out;
}

/** PEFT field names written as Python floats, for formatAdapterConfigJson. */
export function floatNames(schema: readonly Field[]): string[] {
  return schema.filter((f) => f.float).map((f) => f.name);
}

/** The CLI flag of a field: PEFT's name in kebab case. */
export function flagName(f: Field): string {
  return f.name.replace(/_/g, '-');
}

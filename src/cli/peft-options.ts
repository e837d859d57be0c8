/**
 * PEFT options as flags named after PEFT's config fields (kebab case), made from every registered method's
 * schema and shared by `targets` and `train`; turned into the chosen method's validated config. Value errors
 * name the flag; config errors are the engine's (PEFT's wording).
 */
import { resolveArchitecture } from '../engine/models';
import type { ModuleInfo, TaskType } from '../engine/models/types';
import type { TargetReport } from '../engine/peft/method';
import type { ParamCount } from '../engine/peft/params';
import { METHODS, methodOf, RUN_STEPS_UNKNOWN, withRunSteps, type PeftConfig, type PeftSettings } from '../engine/peft/registry';
import { flagName, type Field } from '../engine/peft/schema';
import { METHOD_DEFAULTS, methodDefault } from '../engine/train/defaults';
import { choice, flag, int, list, num, str, usage, type OptSpec, type Parsed } from './common';

/** Fields the form and the CLI leave alone (set from the model or fixed by the file format). */
const settable = (f: Field) => f.kind !== 'fixed' && !f.fromModel;

/** The flag's argument placeholder, from the field's kind. */
function argOf(f: Field): string | undefined {
  switch (f.kind) {
    case 'bool':
      return undefined;
    case 'int':
      return 'N';
    case 'float':
      return 'X';
    case 'choice':
      return f.choices!.map(String).join('|');
    case 'targets':
      return f.name === 'target_modules' ? 'a,b|all-linear' : 'a,b';
    case 'layers':
      return '0,1';
    case 'names':
      return 'a,b';
    case 'object':
      return 'JSON';
    default:
      return 'TEXT';
  }
}

/** Every method's flags (a flag several methods share, such as --target-modules, appears once). */
function buildOptions(): { options: Record<string, OptSpec>; owners: Map<string, Set<string>> } {
  const options: Record<string, OptSpec> = {
    method: { kind: 'value', arg: METHODS.map((m) => m.peftType.toLowerCase()).join('|'), help: 'PEFT method (default lora).' },
  };
  const owners = new Map<string, Set<string>>();
  const own = (flagKey: string, peftType: string) => {
    if (!owners.has(flagKey)) owners.set(flagKey, new Set());
    owners.get(flagKey)!.add(peftType);
  };
  for (const m of METHODS) {
    for (const f of m.schema.filter(settable)) {
      const name = flagName(f);
      const arg = argOf(f);
      const dflt = methodDefault(m.peftType, f.key, f.default);
      options[name] ??= { kind: f.kind === 'bool' ? 'flag' : 'value', ...(arg ? { arg } : {}), help: `${f.help} (${m.label}${dflt !== null && dflt !== undefined ? `; default ${JSON.stringify(dflt)}` : ''})` };
      own(name, m.peftType);
      if (f.regexFlag) {
        options[f.regexFlag] ??= { kind: 'value', arg: 'REGEX', help: `${f.name} as a regex string (re.fullmatch on full module names).` };
        own(f.regexFlag, m.peftType);
      }
    }
  }
  // A flag several methods share says so, with each one's default (LoRA's lora_alpha starts at the shared 16, AdaLoRA's at PEFT's 8).
  for (const [name, who] of owners) {
    if (who.size <= 1 || !options[name]) continue;
    const per = [...who].map((t) => {
      const m = METHODS.find((x) => x.peftType === t)!;
      const f = m.schema.find((x) => flagName(x) === name);
      const d = f ? methodDefault(t, f.key, f.default) : undefined;
      return { label: m.label, d: d === null || d === undefined ? null : JSON.stringify(d) };
    });
    const same = per.every((x) => x.d === per[0].d);
    const tail = same
      ? `${per.map((x) => x.label).join(', ')}${per[0].d !== null ? `; default ${per[0].d}` : ''}`
      : per.map((x) => `${x.label}${x.d !== null ? ` default ${x.d}` : ''}`).join(', ');
    options[name] = { ...options[name], help: options[name].help.replace(/ \([^()]*\)$/, ` (${tail})`) };
  }
  return { options, owners };
}

const built = buildOptions();
export const PEFT_OPTIONS: Record<string, OptSpec> = built.options;

export type Method = string;

/** The --method value (lowercase peft_type), default lora. */
export function method(p: Parsed): Method {
  return choice(p, 'method', METHODS.map((m) => m.peftType.toLowerCase())) ?? 'lora';
}

/** A field's value from its flag (undefined when the flag is absent). */
function fieldValue(p: Parsed, f: Field): unknown {
  const name = flagName(f);
  switch (f.kind) {
    case 'bool':
      return flag(p, name);
    case 'int':
      return int(p, name);
    case 'float':
      return num(p, name);
    case 'choice': {
      const v = str(p, name);
      if (v === undefined) return undefined;
      // Booleans among the choices (init_lora_weights) are given as true / false.
      const hit = f.choices!.find((c) => String(c).toLowerCase() === v.toLowerCase());
      return hit !== undefined ? hit : v; // the engine refuses a bad value with PEFT's wording
    }
    case 'targets': {
      const l = list(p, name);
      const re = f.regexFlag ? str(p, f.regexFlag) : undefined;
      if (l && re !== undefined) throw usage(`give --${name} or --${f.regexFlag}, not both`);
      if (re !== undefined) {
        if (re === '') throw usage(`--${f.regexFlag} needs a value`);
        return re;
      }
      if (!l) return undefined;
      // "all-linear" is PEFT's special str value, not a module name; one layers_pattern name is a str too.
      if (l.length === 1 && (l[0].toLowerCase() === 'all-linear' || f.name === 'layers_pattern')) return l[0];
      return l;
    }
    case 'layers': {
      const l = list(p, name);
      if (!l) return undefined;
      const idx = l.map((s) => {
        if (!/^\d+$/.test(s)) throw usage(`--${name} takes layer indices (integers >= 0), got "${s}"`);
        return parseInt(s, 10);
      });
      // A single value is an int in PEFT's config, as a person would write it.
      return idx.length === 1 && !str(p, name)!.includes(',') ? idx[0] : idx;
    }
    case 'names':
      return list(p, name);
    case 'object': {
      const v = str(p, name);
      if (v === undefined) return undefined;
      try {
        return JSON.parse(v);
      } catch {
        throw usage(`--${name} takes a JSON object, e.g. '{"c_attn": 4}'; got ${v}`);
      }
    }
    default:
      return str(p, name);
  }
}

/**
 * The validated engine config for the PEFT flags. `taskType` is the PEFT task_type (null: a bare PeftModel);
 * `baseName` goes into the config (and is the default tokenizer_name_or_path for TEXT init).
 */
/**
 * The method's config from the flags. `runSteps`: the run's optimizer steps, for fields the run fills when
 * left empty (AdaLoRA's total_step); without a run (the targets command) such a field only has to be valid,
 * so it gets RUN_STEPS_UNKNOWN.
 */
export function peftConfigFromFlags(p: Parsed, taskType: TaskType | null, baseName: string | null, runSteps = RUN_STEPS_UNKNOWN): PeftConfig {
  const m = methodOf(method(p).toUpperCase());
  const mine = new Set(m.schema.filter(settable).flatMap((f) => [flagName(f), ...(f.regexFlag ? [f.regexFlag] : [])]));
  for (const [flagKey, owners] of built.owners) {
    if (p.opts.has(flagKey) && !mine.has(flagKey)) throw usage(`--${flagKey} does not apply to --method ${method(p)} (it is for ${[...owners].map((o) => o.toLowerCase()).join(', ')})`);
  }
  if (m.prompt && !taskType) throw usage(`${m.label} needs a task type (causal_lm or seq_cls)`);
  const over: Record<string, unknown> = { taskType, baseModelNameOrPath: baseName };
  for (const f of m.schema.filter(settable)) {
    const v = fieldValue(p, f);
    if (v !== undefined) over[f.key] = v;
    // A flag left out takes the shared default (the studio's form starts there too), PEFT's otherwise.
    else if (METHOD_DEFAULTS[m.peftType] && f.key in METHOD_DEFAULTS[m.peftType]) over[f.key] = METHOD_DEFAULTS[m.peftType][f.key];
  }
  return m.config(withRunSteps({ ...over, peftType: m.peftType } as PeftSettings, runSteps)) as PeftConfig;
}

export interface TargetRow extends TargetReport {
  count: ParamCount;
}

/** What a config adapts on a model described by config.json alone, and PEFT's trainable / all counts. */
export function resolveTargetsOnTree(rawConfig: Record<string, unknown>, modelTask: TaskType, modules: ModuleInfo[], cfg: PeftConfig): TargetRow {
  resolveArchitecture(rawConfig, modelTask); // a clear error for an unknown architecture first
  return methodOf(cfg.peftType).resolve({ modules, rawConfig, task: modelTask }, cfg);
}

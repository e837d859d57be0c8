/**
 * PEFT's module-matching rules (peft 0.15.2, tuners_utils.check_target_module_exists / inject_adapter /
 * _maybe_include_all_linear_layers / _find_minimal_target_modules), shared by every method that targets modules.
 * The goal is that the same config selects exactly the same modules here as in PEFT, and that the errors read
 * the same, so a config moves between PEFT Studio and Python without surprises.
 */
import { EngineError } from '../errors';
import type { HeadInfo, ModuleInfo, PeftDefaults, TaskType } from '../models/types';

/** A string is a regex matched with re.fullmatch against the full name (or "all-linear"); a list matches by name or "." + suffix. */
export type TargetSpec = string | string[] | null;

export interface MatchOptions {
  targetModules: TargetSpec;
  excludeModules?: TargetSpec;
  layersToTransform?: number | number[] | null;
  layersPattern?: string | string[] | null;
  /** Modules that get a trainable copy; PEFT never puts an adapter on them or inside them. */
  modulesToSave?: string[] | null;
}

export interface TargetResolution {
  /** Sorted names of modules that become LoRA layers. */
  matched: string[];
  /** Names of modules wrapped in a trainable copy (PEFT's ModulesToSaveWrapper), in module order. */
  modulesToSave: string[];
  /** target_modules as adapter_config.json stores it (lists sorted, since PEFT keeps a set). */
  savedTargetModules: string | string[];
  /** modules_to_save as adapter_config.json stores it (SEQ_CLS appends "classifier", "score"). */
  savedModulesToSave: string[] | null;
  /** fan_in_fan_out as PEFT leaves it in the config: the last adapted Linear sets false, Conv1D true; null = unchanged. */
  fanInFanOut: boolean | null;
}

/** PeftModelForSequenceClassification appends these to modules_to_save. */
export const SEQ_CLS_MODULES_TO_SAVE = ['classifier', 'score'];
/** PeftModelForSequenceClassification and PeftModelForTokenClassification both add the heads to modules_to_save. */
export function hasHeadModules(task: TaskType | null | undefined): boolean {
  return task === 'SEQ_CLS' || task === 'TOKEN_CLS';
}
/** modules_to_save plus the SEQ_CLS head names that are not in it yet. */
export function withSeqClsHeads(mts: string[] | null | undefined): string[] {
  const out = [...(mts ?? [])];
  for (const h of SEQ_CLS_MODULES_TO_SAVE) if (!out.includes(h)) out.push(h);
  return out;
}
/** Above this many list entries PEFT rewrites target_modules to minimal suffixes (MIN_TARGET_MODULES_FOR_OPTIMIZATION). */
const MIN_TARGET_MODULES_FOR_OPTIMIZATION = 20;
/** Module classes "all-linear" picks (torch.nn.Linear, transformers Conv1D). */
const LINEAR_TYPES = new Set(['Linear', 'Conv1D']);
/** Classes PEFT's LoRA dispatch accepts; those outside LINEAR_TYPES PEFT Studio cannot adapt yet. */
const PEFT_LORA_TYPES = new Set(['Linear', 'Conv1D', 'Embedding', 'Conv1d', 'Conv2d', 'Conv3d', 'MultiheadAttention']);

// ---------------------------------------------------------------------------------------------------------------
// Python-compatible regex and repr helpers

const regexCache = new Map<string, RegExp>();

/** Compiles a Python `re` pattern for JS; `anchor` 'full' = re.fullmatch, 'start' = re.match. */
function pyRegex(pattern: string, anchor: 'full' | 'start'): RegExp {
  const key = `${anchor}\u0000${pattern}`;
  let re = regexCache.get(key);
  if (!re) {
    // The syntax the two engines share covers what people write for module names; translate the few
    // Python-only spellings (named groups, \A, \Z) so such patterns still work.
    const src = pattern
      .replace(/\(\?P<([A-Za-z_]\w*)>/g, '(?<$1>')
      .replace(/\(\?P=([A-Za-z_]\w*)\)/g, '\\k<$1>')
      .replace(/\\A/g, '^')
      .replace(/\\Z/g, '$');
    try {
      re = new RegExp(anchor === 'full' ? `^(?:${src})$` : `^(?:${src})`);
    } catch (e) {
      throw new EngineError('BAD_PEFT_CONFIG', `Invalid regular expression ${pyRepr(pattern)}: ${(e as Error).message}`);
    }
    regexCache.set(key, re);
  }
  return re;
}

/** re.fullmatch(pattern, name) with Python's pattern syntax (IA3's feedforward_modules as a str). */
export function pyFullMatch(pattern: string, name: string): boolean {
  return pyRegex(pattern, 'full').test(name);
}

/** Python repr() of a str, list, set, int or None, for error messages that must read like PEFT's. */
export function pyRepr(v: unknown, asSet = false): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) {
    if (asSet) return v.length ? `{${v.map((x) => pyRepr(x)).join(', ')}}` : 'set()';
    return `[${v.map((x) => pyRepr(x)).join(', ')}]`;
  }
  const s = String(v);
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += `\\${q}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return q + out + q;
}

/** f"{x}" of a config value: a str prints bare, anything else as repr. */
function pyStr(v: unknown, asSet = false): string {
  return typeof v === 'string' ? v : pyRepr(v, asSet);
}

// ---------------------------------------------------------------------------------------------------------------
// Matching

type MatchResult = boolean | 'excluded';

function nameOrSuffix(name: string, list: string[]): boolean {
  return list.includes(name) || list.some((k) => name.endsWith(`.${k}`));
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
}

/**
 * The layer index PEFT reads from a module name: the integer after `.<layers_pattern>.` (first pattern that
 * matches), or without a pattern from `.*\.[^.]*\.(\d+)\.`. Both need text before and after, as in PEFT.
 */
export function describeLayerIndex(name: string, layersPattern?: string | string[] | null): number | null {
  let m: RegExpExecArray | null = null;
  if (isEmpty(layersPattern)) {
    m = pyRegex('.*\\.[^.]*\\.(\\d+)\\.', 'start').exec(name);
  } else {
    for (const p of typeof layersPattern === 'string' ? [layersPattern] : layersPattern!) {
      m = pyRegex(`.*\\.${p}\\.(\\d+)\\.`, 'start').exec(name);
      if (m) break;
    }
  }
  return m ? parseInt(m[1], 10) : null;
}

/** check_target_module_exists: true / false, or 'excluded' when exclude_modules or modules_to_save rule it out. */
function checkTarget(name: string, opts: MatchOptions): MatchResult {
  const ex = opts.excludeModules;
  if (!isEmpty(ex)) {
    if (typeof ex === 'string' ? pyRegex(ex, 'full').test(name) : nameOrSuffix(name, ex!)) return 'excluded';
  }
  // PEFT >= 0.15.2: an adapter never goes on (or inside) a modules_to_save module; the entry is used as a regex.
  for (const m of opts.modulesToSave ?? []) {
    if (pyRegex(`(^|.*\\.)${m}($|\\..*)`, 'start').test(name)) return 'excluded';
  }
  const t = opts.targetModules;
  if (t === null || t === undefined) return false;
  if (typeof t === 'string') return pyRegex(t, 'full').test(name);
  // An exact full name is taken as is: layers_to_transform only filters suffix matches (PEFT quirk).
  if (t.includes(name)) return true;
  if (!t.some((k) => name.endsWith(`.${k}`))) return false;
  const idx = opts.layersToTransform;
  const usingIdx = idx !== null && idx !== undefined && (Array.isArray(idx) ? idx.length > 0 : true);
  if (!usingIdx) return true;
  const layer = describeLayerIndex(name, opts.layersPattern);
  if (layer === null) return false;
  return Array.isArray(idx) ? idx.includes(layer) : layer === idx;
}

/** true when a module name is targeted, exactly like PEFT's check_target_module_exists. */
export function isTargeted(name: string, opts: MatchOptions): boolean {
  return checkTarget(name, opts) === true;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution over a module tree

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpList(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = cmpStr(a[i], b[i]);
    if (c) return c;
  }
  return a.length - b.length;
}

/** All dotted suffixes of a name, shortest first ("a.b.c" -> c, b.c, a.b.c). */
function suffixes(s: string): string[] {
  const parts = s.split('.');
  return parts.map((_, i) => parts.slice(i).join('.')).reverse();
}

/** PEFT's _find_minimal_target_modules: the fewest suffixes that hit every target and nothing else. */
export function findMinimalTargetModules(targets: string[], others: string[]): string[] {
  const other = new Set(others.flatMap(suffixes));
  const required = new Set<string>();
  // Sorted by suffix list, as PEFT does for determinism.
  const items = [...new Set(targets)].map((t) => [t, suffixes(t)] as const).sort((a, b) => cmpList(a[1], b[1]));
  for (const [item, sfx] of items) {
    for (const s of sfx) {
      if (required.has(s) || other.has(s)) continue;
      if (![...required].some((r) => item.endsWith(`.${r}`))) {
        required.add(s);
        break;
      }
    }
  }
  return required.size ? [...required] : [...new Set(targets)];
}

const SUPPORTED_MSG =
  'Currently, only the following modules are supported: `torch.nn.Linear`, `torch.nn.Embedding`, `torch.nn.Conv1d`, ' +
  '`torch.nn.Conv2d`, `torch.nn.Conv3d`, `transformers.pytorch_utils.Conv1D`, `torch.nn.MultiheadAttention.`.';

function layerNote(opts: MatchOptions): string {
  let s = '';
  if (opts.layersToTransform !== null && opts.layersToTransform !== undefined) {
    s += ` Note: You specified 'layers_to_transform': ${pyStr(opts.layersToTransform)}.`;
  }
  if (opts.layersPattern !== null && opts.layersPattern !== undefined) {
    s += ` You also specified 'layers_pattern': ${pyStr(opts.layersPattern)}.`;
  }
  return s;
}

/** Where PEFT's tuners differ in inject_adapter (LoRA's behaviour when absent). */
export interface TunerRules {
  /** Rewrite >= 20 list entries to minimal suffixes; PEFT skips this for IA3 (feedforward_modules is coupled, #2429). */
  minimizeTargets?: boolean;
  /** Throws for a matched module the tuner cannot wrap (PEFT's "is not supported", or one PEFT Studio lacks). */
  checkModule?: (m: ModuleInfo) => void;
  /** The tuner's layer class, as PEFT's modules_to_save TypeError names it (LoRA's when absent). */
  layerClass?: string;
}

function checkLoraModule(m: ModuleInfo): void {
  if (!PEFT_LORA_TYPES.has(m.type)) {
    throw new EngineError('BAD_PEFT_CONFIG', `Target module ${m.name} (${m.type}) is not supported. ${SUPPORTED_MSG}`);
  }
  if (!LINEAR_TYPES.has(m.type)) {
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `LoRA on ${m.type} modules (${m.name}) works in PEFT but not in PEFT Studio yet; target Linear or Conv1D modules.`,
    );
  }
}

/** What target resolution needs to know about the model besides its modules. */
export interface TargetContext {
  task: TaskType | null;
  heads: HeadInfo;
  /** The architecture's PEFT defaults (ArchitectureSpec.peftDefaults), used when target_modules is None. */
  defaults: PeftDefaults;
}

/**
 * Resolves targets over a named_modules() list like get_peft_model(LoraConfig) does. Throws
 * EngineError('TARGETS_NOT_FOUND', <PEFT's ValueError text>) when nothing is adapted, and BAD_PEFT_CONFIG when a
 * matched module cannot carry LoRA (PEFT's "is not supported" error, or a PEFT type PEFT Studio lacks). `rules`
 * adapts it to another tuner that shares inject_adapter (IA3).
 */
export function resolveLoraTargets(
  modules: ModuleInfo[],
  opts: MatchOptions,
  ctx: TargetContext,
  rules: TunerRules = {},
): TargetResolution {
  const checkModule = rules.checkModule ?? checkLoraModule;
  // modules_to_save as PeftModelForSequenceClassification leaves it. PEFT extends the list blindly, so every
  // load + save of a SEQ_CLS adapter would append the heads again; appending only missing names keeps a
  // round trip stable and wraps exactly the same modules.
  let savedMts: string[] | null = opts.modulesToSave ? [...opts.modulesToSave] : null;
  if (hasHeadModules(ctx.task)) savedMts = withSeqClsHeads(savedMts);

  // _prepare_adapter_config: no target_modules -> the architecture default, as a set.
  let target: string | string[];
  if (opts.targetModules === null || opts.targetModules === undefined) {
    const def = ctx.defaults.lora;
    if (!def) throw new EngineError('TARGETS_NOT_FOUND', 'Please specify `target_modules` in `peft_config`');
    target = [...def];
  } else {
    target = typeof opts.targetModules === 'string' ? opts.targetModules : [...new Set(opts.targetModules)];
  }

  const names = modules.map((m) => m.name);
  // "all-linear" (case-insensitive, str only): every Linear / Conv1D by full name, minus the output embedding,
  // or for SEQ_CLS models without one the classifier head.
  if (typeof target === 'string' && target.toLowerCase() === 'all-linear') {
    const skip = ctx.heads.outputEmbedding ?? (ctx.task === 'SEQ_CLS' ? ctx.heads.classifier : undefined);
    target = modules.filter((m) => LINEAR_TYPES.has(m.type) && m.name !== skip).map((m) => m.name);
  }
  // Long lists are rewritten to the minimal suffix set; that rewritten list is what gets matched and saved.
  if (Array.isArray(target) && target.length >= MIN_TARGET_MODULES_FOR_OPTIMIZATION && rules.minimizeTargets !== false) {
    const list = target;
    const others = names.filter((n) => !nameOrSuffix(n, list));
    const minimal = findMinimalTargetModules(list, others);
    if (minimal.length < list.length) target = minimal;
  }

  // PeftModelForSequenceClassification appends its heads to modules_to_save only after the adapter is injected,
  // so at creation only the config's own modules_to_save keep adapters out (a reload sees the heads too).
  const eff: MatchOptions = { ...opts, targetModules: target };
  const matched: string[] = [];
  let excluded = 0;
  let unmatched = 0;
  let fanInFanOut: boolean | null = null;
  for (const m of modules) {
    if (!m.name) continue;
    const r = checkTarget(m.name, eff);
    if (r === 'excluded') excluded++;
    else if (!r) unmatched++;
    else {
      checkModule(m);
      fanInFanOut = m.type === 'Conv1D';
      matched.push(m.name);
    }
  }

  if (!matched.length) {
    if (excluded && !unmatched) {
      throw new EngineError(
        'TARGETS_NOT_FOUND',
        'All modules were excluded. This is likely unintended. ' +
          'Check your `target_modules`, `exclude_modules` and `modules_to_save` configuration.',
      );
    }
    if (!excluded) {
      throw new EngineError(
        'TARGETS_NOT_FOUND',
        `Target modules ${pyStr(target, true)} not found in the base model. Please check the target modules and try again.` +
          layerNote(opts),
      );
    }
    throw new EngineError(
      'TARGETS_NOT_FOUND',
      'No modules were targeted for adaptation. This might be caused by a combination of mismatched target modules and ' +
        'excluded modules. Please check your `target_modules` and `exclude_modules` configuration. You may also have ' +
        'only targeted modules that are marked to be saved (`modules_to_save`).' +
        layerNote(opts),
    );
  }

  // _set_trainable wraps every module whose name ends with an entry (plain endswith, no dot), outermost first.
  const wrapped: string[] = [];
  for (const n of names) {
    if (!n || !savedMts?.some((s) => n.endsWith(s))) continue;
    if (wrapped.some((w) => n.startsWith(`${w}.`))) continue;
    wrapped.push(n);
  }
  // _set_trainable then meets the adapter layers PEFT just put on (or inside) a head.
  for (const w of wrapped) {
    const inside = matched.filter((n) => n === w || n.startsWith(`${w}.`));
    if (!inside.length) continue;
    if (inside.includes(w)) {
      throw new EngineError(
        'BAD_PEFT_CONFIG',
        `modules_to_save cannot be applied to modules of type <class '${rules.layerClass ?? 'peft.tuners.lora.layer.Linear'}'>` +
          ` (${w} is targeted and is also the head PEFT trains in full: add ${pyRepr(w)} to exclude_modules)`,
      );
    }
    // PEFT 0.15.2 runs this model but saves keys (original_module, modules_to_save, base_layer) it cannot load back.
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `${inside.join(', ')} ${inside.length > 1 ? 'are' : 'is'} inside the head ${w}, which PEFT trains in full (modules_to_save): PEFT 0.15.2 would put the adapter inside both copies of the head and save an adapter it cannot load back. Add ${pyRepr(inside)} to exclude_modules (the head still trains).`,
    );
  }

  return {
    matched: [...matched].sort(cmpStr),
    modulesToSave: wrapped,
    savedTargetModules: typeof target === 'string' ? target : [...target].sort(cmpStr),
    savedModulesToSave: savedMts,
    fanInFanOut,
  };
}

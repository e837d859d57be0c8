/**
 * PEFT options as flags named after PEFT's config fields (kebab case), shared by `targets` and `train`,
 * turned into the engine's validated LoraConfig / PromptTuningConfig. Value errors name the flag; config
 * errors are the engine's (PEFT's wording).
 */
import { resolveArchitecture } from '../engine/models';
import type { ModuleInfo, TaskType } from '../engine/models/types';
import type { PeftConfig } from '../engine/peft/config';
import { loraConfig, type InitLoraWeights, type LoraConfig } from '../engine/peft/lora/config';
import { countLora, countPromptTuning, type ParamCount } from '../engine/peft/params';
import { promptTuningConfig } from '../engine/peft/prompt-tuning/config';
import { resolveLoraTargets, type TargetResolution } from '../engine/peft/targets';
import { choice, flag, int, list, num, str, usage, type OptSpec, type Parsed } from './common';

export const PEFT_OPTIONS: Record<string, OptSpec> = {
  method: { kind: 'value', arg: 'lora|prompt_tuning', help: 'PEFT method (default lora).' },
  r: { kind: 'value', arg: 'N', help: 'LoRA rank (PEFT default 8).' },
  'lora-alpha': { kind: 'value', arg: 'X', help: 'LoRA alpha (PEFT default 8).' },
  'lora-dropout': { kind: 'value', arg: 'P', help: 'LoRA dropout in [0, 1) (default 0).' },
  'use-rslora': { kind: 'flag', help: 'Scale by lora_alpha / sqrt(r).' },
  bias: { kind: 'value', arg: 'none|all|lora_only', help: 'Which biases train (default none).' },
  'init-lora-weights': { kind: 'value', arg: 'true|false|gaussian', help: 'LoRA init (default true).' },
  'target-modules': { kind: 'value', arg: 'a,b|all-linear', help: 'Module names or suffixes (PEFT list), or all-linear.' },
  'target-regex': { kind: 'value', arg: 'REGEX', help: 'target_modules as a regex string (re.fullmatch on full names).' },
  'exclude-modules': { kind: 'value', arg: 'a,b', help: 'Modules to leave out (names or suffixes).' },
  'exclude-regex': { kind: 'value', arg: 'REGEX', help: 'exclude_modules as a regex string.' },
  'layers-to-transform': { kind: 'value', arg: '0,1', help: 'Only these layer indices.' },
  'layers-pattern': { kind: 'value', arg: 'NAME', help: 'Name of the layer list (h, layers, layer).' },
  'modules-to-save': { kind: 'value', arg: 'a,b', help: 'Modules trained in full and saved with the adapter.' },
  'num-virtual-tokens': { kind: 'value', arg: 'N', help: 'Prompt tuning: virtual tokens (default 8).' },
  'prompt-tuning-init': { kind: 'value', arg: 'RANDOM|SAMPLE_VOCAB|TEXT', help: 'Prompt tuning init (default RANDOM).' },
  'prompt-tuning-init-text': { kind: 'value', arg: 'TEXT', help: 'Text whose tokens initialise the prompt (needs a tokenizer).' },
  'tokenizer-name-or-path': { kind: 'value', arg: 'NAME', help: 'Saved with TEXT init (default: the base model name).' },
};

const LORA_ONLY = ['r', 'lora-alpha', 'lora-dropout', 'use-rslora', 'bias', 'init-lora-weights', 'target-modules', 'target-regex',
  'exclude-modules', 'exclude-regex', 'layers-to-transform', 'layers-pattern', 'modules-to-save'];
const PROMPT_ONLY = ['num-virtual-tokens', 'prompt-tuning-init', 'prompt-tuning-init-text', 'tokenizer-name-or-path'];

export type Method = 'lora' | 'prompt_tuning';

export function method(p: Parsed): Method {
  return choice(p, 'method', ['lora', 'prompt_tuning'] as const) ?? 'lora';
}

function oneOrList(p: Parsed, listFlag: string, regexFlag: string): string | string[] | null {
  const l = list(p, listFlag);
  const re = str(p, regexFlag);
  if (l && re !== undefined) throw usage(`give --${listFlag} or --${regexFlag}, not both`);
  if (re !== undefined) {
    if (re === '') throw usage(`--${regexFlag} needs a value`);
    return re;
  }
  if (!l) return null;
  // "all-linear" is PEFT's special str value, not a module name.
  if (l.length === 1 && l[0].toLowerCase() === 'all-linear') return l[0];
  return l;
}

function layerIndices(p: Parsed): number | number[] | null {
  const l = list(p, 'layers-to-transform');
  if (!l) return null;
  const idx = l.map((s) => {
    if (!/^\d+$/.test(s)) throw usage(`--layers-to-transform takes layer indices (integers >= 0), got "${s}"`);
    return parseInt(s, 10);
  });
  // A single value is an int in PEFT's config, as a person would write it.
  return idx.length === 1 && !str(p, 'layers-to-transform')!.includes(',') ? idx[0] : idx;
}

function initWeights(p: Parsed): InitLoraWeights | undefined {
  const v = str(p, 'init-lora-weights');
  if (v === undefined) return undefined;
  const l = v.toLowerCase();
  if (l === 'true') return true;
  if (l === 'false') return false;
  return v as InitLoraWeights; // 'gaussian', or a value the engine refuses with PEFT's wording
}

/**
 * The validated engine config for the PEFT flags. `taskType` is the PEFT task_type (null: a bare PeftModel);
 * `baseName` goes into the config (and is the default tokenizer_name_or_path for TEXT init).
 */
export function peftConfigFromFlags(p: Parsed, taskType: TaskType | null, baseName: string | null): PeftConfig {
  const m = method(p);
  const misplaced = (m === 'lora' ? PROMPT_ONLY : LORA_ONLY).find((f) => p.opts.has(f));
  if (misplaced) throw usage(`--${misplaced} does not apply to --method ${m}`);
  if (m === 'prompt_tuning') {
    if (!taskType) throw usage('prompt tuning needs a task type (causal_lm or seq_cls)');
    const init = choice(p, 'prompt-tuning-init', ['RANDOM', 'SAMPLE_VOCAB', 'TEXT'] as const) ?? 'RANDOM';
    const text = init === 'TEXT';
    return promptTuningConfig({
      taskType,
      numVirtualTokens: int(p, 'num-virtual-tokens') ?? 8,
      promptTuningInit: init,
      promptTuningInitText: str(p, 'prompt-tuning-init-text') ?? null,
      tokenizerNameOrPath: text ? (str(p, 'tokenizer-name-or-path') ?? baseName) : (str(p, 'tokenizer-name-or-path') ?? null),
      baseModelNameOrPath: baseName,
    });
  }
  const over: Partial<LoraConfig> = {
    taskType,
    targetModules: oneOrList(p, 'target-modules', 'target-regex'),
    excludeModules: oneOrList(p, 'exclude-modules', 'exclude-regex'),
    layersToTransform: layerIndices(p),
    layersPattern: str(p, 'layers-pattern') ?? null,
    modulesToSave: list(p, 'modules-to-save') ?? null,
    baseModelNameOrPath: baseName,
  };
  const r = int(p, 'r');
  if (r !== undefined) over.r = r;
  const alpha = num(p, 'lora-alpha');
  if (alpha !== undefined) over.loraAlpha = alpha;
  const drop = num(p, 'lora-dropout');
  if (drop !== undefined) over.loraDropout = drop;
  const rs = flag(p, 'use-rslora');
  if (rs !== undefined) over.useRslora = rs;
  const bias = str(p, 'bias');
  if (bias !== undefined) over.bias = bias as LoraConfig['bias'];
  const init = initWeights(p);
  if (init !== undefined) over.initLoraWeights = init;
  return loraConfig(over);
}

export interface TargetReport {
  matched: string[];
  modulesToSave: string[];
  resolution: TargetResolution | null;
  count: ParamCount;
}

/** What a config adapts on a model described by config.json alone, and PEFT's trainable / all counts. */
export function resolveTargetsOnTree(
  rawConfig: Record<string, unknown>,
  modelTask: TaskType,
  modules: ModuleInfo[],
  cfg: PeftConfig,
): TargetReport {
  const r = resolveArchitecture(rawConfig, modelTask);
  const tied = r.spec.tied(r.config, r.task);
  if (cfg.peftType === 'PROMPT_TUNING') {
    const count = countPromptTuning(modules, { numVirtualTokens: cfg.numVirtualTokens, tokenDim: r.config.hiddenSize }, r.task, tied);
    return { matched: [], modulesToSave: [], resolution: null, count };
  }
  const res = resolveLoraTargets(
    modules,
    {
      targetModules: cfg.targetModules,
      excludeModules: cfg.excludeModules,
      layersToTransform: cfg.layersToTransform,
      layersPattern: cfg.layersPattern,
      modulesToSave: cfg.modulesToSave,
    },
    { task: cfg.taskType, heads: r.spec.heads(r.config, r.task), modelType: r.config.modelType },
  );
  const count = countLora(modules, res, { r: cfg.r, bias: cfg.bias, tied });
  return { matched: res.matched, modulesToSave: res.modulesToSave, resolution: res, count };
}

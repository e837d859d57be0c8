/**
 * Parameter counts identical to PEFT's PeftModel.get_nb_trainable_parameters / print_trainable_parameters, so the
 * number the UI shows is the number a Python user sees for the same model and config.
 */
import type { ModuleInfo, TaskType } from '../models/types';
import type { TargetResolution } from './targets';
import { countParams } from '../models';
import { promptHeadModules } from './prompt-learning';

export interface ParamCount {
  trainable: number;
  all: number;
}

/** Full parameter name -> the parameter it is tied to (Model.tied), e.g. lm_head.weight -> transformer.wte.weight. */
export type TiedMap = Record<string, string>;

interface Param {
  name: string;
  module: string;
  numel: number;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Every parameter tensor once: PyTorch's named_parameters() de-duplicates shared tensors, so a tied weight
 * (GPT-2 lm_head.weight is transformer.wte.weight) counts once, under the name of the tensor it is tied to.
 */
function uniqueParams(modules: ModuleInfo[], tied: TiedMap = {}): Param[] {
  const out: Param[] = [];
  for (const m of modules) {
    for (const [p, shape] of Object.entries(m.params)) {
      const name = m.name ? `${m.name}.${p}` : p;
      if (name in tied) continue;
      out.push({ name, module: m.name, numel: numel(shape) });
    }
  }
  return out;
}

function inside(module: string, root: string): boolean {
  return root === '' || module === root || module.startsWith(`${root}.`);
}

/** Parameters of the frozen base model (each tensor once): the models' own count, under PEFT's name. */
/**
 * Full names of the parameters of `root` and every module inside it, in module order: what a
 * ModulesToSaveWrapper copies (RoBERTa's `classifier` head holds none itself, only dense / out_proj do).
 */
export function paramsUnder(modules: ModuleInfo[], root: string): string[] {
  return modules.filter((m) => inside(m.name, root)).flatMap((m) => Object.keys(m.params).map((p) => `${m.name}.${p}`));
}

export function countBaseParams(modules: ModuleInfo[], tied: TiedMap = {}): number {
  return countParams(modules, tied);
}

/** in_features / out_features of a module that LoRA wraps (Conv1D stores [in, out], Linear [out, in]). */
export function loraFeatures(m: ModuleInfo): { inFeatures: number; outFeatures: number } {
  const w = m.params.weight;
  if (!w || w.length !== 2) throw new Error(`module ${m.name} (${m.type}) has no 2-D weight`);
  // Embedding [num_embeddings, dim] reads like Conv1D: lora_embedding_A is [r, num_embeddings], B [dim, r].
  return m.type === 'Linear' ? { inFeatures: w[1], outFeatures: w[0] } : { inFeatures: w[0], outFeatures: w[1] };
}

/**
 * LoRA: A [r, in] + B [out, r] per adapted module. A modules_to_save module is copied (ModulesToSaveWrapper):
 * the copy is trainable and both copies count in `all`. Bias 'all' makes every parameter whose name contains
 * "bias" trainable (PEFT tests `"bias" in name`); the original inside a ModulesToSaveWrapper is frozen again
 * when the wrapper is made, so it stays frozen. 'lora_only' trains the biases of the adapted modules.
 */
export function countLora(
  modules: ModuleInfo[],
  res: Pick<TargetResolution, 'matched' | 'modulesToSave'>,
  cfg: { r: number | ((module: string) => number); bias: 'none' | 'all' | 'lora_only'; tied?: TiedMap },
): ParamCount {
  const rankOf = typeof cfg.r === 'number' ? () => cfg.r as number : cfg.r;
  const params = uniqueParams(modules, cfg.tied);
  const byName = new Map(modules.map((m) => [m.name, m]));
  let all = params.reduce((a, p) => a + p.numel, 0);
  let trainable = 0;

  for (const name of res.matched) {
    const m = byName.get(name);
    if (!m) throw new Error(`matched module ${name} is not in the module list`);
    const { inFeatures, outFeatures } = loraFeatures(m);
    const n = rankOf(name) * (inFeatures + outFeatures);
    trainable += n;
    all += n;
  }

  const wrapped = res.modulesToSave;
  for (const root of wrapped) {
    // deepcopy of the whole sub-module; count its parameters again (a tied tensor inside is still one tensor).
    const n = params.filter((p) => inside(p.module, root)).reduce((a, p) => a + p.numel, 0);
    trainable += n;
    all += n;
  }

  if (cfg.bias !== 'none') {
    const matched = new Set(res.matched);
    for (const p of params) {
      if (wrapped.some((w) => inside(p.module, w))) continue;
      const isBias = cfg.bias === 'all' ? p.name.includes('bias') : matched.has(p.module) && p.name === `${p.module}.bias`;
      if (isBias) trainable += p.numel;
    }
  }
  return { trainable, all };
}


/**
 * Every prompt method: the prompt's own trainable tensors (`promptParams`, encoders included) plus, for SEQ_CLS
 * and TOKEN_CLS, the classification head, which PEFT >= 0.16 wraps in a ModulesToSaveWrapper (PeftModelForSequenceClassification
 * with modules_to_save on prompt configs): the copy is trainable and both copies count in `all`, as for LoRA.
 * PEFT 0.15.2 printed the prompt alone (its head stayed frozen); PEFT Studio trains and saves the head, so it counts it.
 */
export function countPromptLearning(modules: ModuleInfo[], promptParams: number, task?: TaskType | null, tied: TiedMap = {}): ParamCount {
  const heads = promptHeadModules(modules, task ?? null);
  const head = uniqueParams(modules, tied).filter((p) => heads.some((h) => inside(p.module, h))).reduce((a, p) => a + p.numel, 0);
  return { trainable: promptParams + head, all: countBaseParams(modules, tied) + promptParams + head };
}

/** Prompt tuning: the prompt embedding [num_virtual_tokens * num_transformer_submodules, token_dim] (+ the SEQ_CLS head). */
export function countPromptTuning(
  modules: ModuleInfo[],
  cfg: { numVirtualTokens: number; tokenDim: number; numTransformerSubmodules?: number | null },
  task?: TaskType | null,
  tied: TiedMap = {},
): ParamCount {
  return countPromptLearning(modules, cfg.numVirtualTokens * (cfg.numTransformerSubmodules ?? 1) * cfg.tokenDim, task, tied);
}



/** Python's f"{n:,d}". */
function thousands(n: number): string {
  const s = String(Math.abs(Math.trunc(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${s}` : s;
}

/**
 * Python's f"{x:.4f}": correctly rounded like JS toFixed, except that an exact binary tie rounds half to even
 * (0.03125 -> "0.0312" in Python, "0.0313" from toFixed).
 */
export function pyFixed4(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const exact = Math.abs(x).toFixed(100); // exact decimal expansion for the magnitudes seen here
  const [int, frac] = exact.split('.');
  if (/^50*$/.test(frac.slice(4))) {
    let kept = BigInt(int + frac.slice(0, 4));
    if (kept % 2n === 1n) kept += 1n;
    const digits = kept.toString().padStart(5, '0');
    const out = `${digits.slice(0, -4)}.${digits.slice(-4)}`;
    return x < 0 ? `-${out}` : out;
  }
  return x.toFixed(4);
}

/** Exactly PEFT's print_trainable_parameters line. */
export function formatTrainableLine(c: ParamCount): string {
  return `trainable params: ${thousands(c.trainable)} || all params: ${thousands(c.all)} || trainable%: ${pyFixed4(
    (100 * c.trainable) / c.all,
  )}`;
}


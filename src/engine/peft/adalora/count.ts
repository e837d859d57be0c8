/** PEFT's trainable / all parameter numbers for this method (get_nb_trainable_parameters). */
import type { ModuleInfo } from '../../models/types';
import { countLora, type ParamCount, type TiedMap } from '../params';
import type { TargetResolution } from '../targets';

/**
 * AdaLoRA: per adapted module lora_A [r, in] + lora_E [r, 1] + lora_B [out, r] are trainable, and the frozen
 * ranknum (one float per module) counts in `all` only. r is init_r, or a loaded rank_pattern's kept rank.
 * modules_to_save and bias as LoRA (AdaLoraModel is a LoraModel).
 */
export function countAdaLora(
  modules: ModuleInfo[],
  res: Pick<TargetResolution, 'matched' | 'modulesToSave'>,
  cfg: { r: (module: string) => number; bias: 'none' | 'all' | 'lora_only'; tied?: TiedMap },
): ParamCount {
  const lora = countLora(modules, res, cfg);
  const e = res.matched.reduce((n, m) => n + cfg.r(m), 0);
  return { trainable: lora.trainable + e, all: lora.all + e + res.matched.length };
}

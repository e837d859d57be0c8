/** PEFT's trainable / all parameter numbers for this method (get_nb_trainable_parameters). */
import type { ModuleInfo } from '../../models/types';
import { countLora, loraFeatures, type ParamCount, type TiedMap } from '../params';
import type { TargetResolution } from '../targets';

/**
 * IA3: one vector per adapted module, [in] for a feedforward module (scales the input), [out] otherwise;
 * modules_to_save copies count as for LoRA. IA3 has no bias option.
 */
export function countIa3(
  modules: ModuleInfo[],
  res: Pick<TargetResolution, 'matched' | 'modulesToSave'>,
  cfg: { feedforward: readonly string[]; tied?: TiedMap },
): ParamCount {
  // LoRA's count at rank 0 is the base model plus the modules_to_save copies.
  const base = countLora(modules, res, { r: 0, bias: 'none', tied: cfg.tied });
  const byName = new Map(modules.map((m) => [m.name, m]));
  const ff = new Set(cfg.feedforward);
  let n = 0;
  for (const name of res.matched) {
    const m = byName.get(name);
    if (!m) throw new Error(`matched module ${name} is not in the module list`);
    const { inFeatures, outFeatures } = loraFeatures(m);
    n += ff.has(name) ? inFeatures : outFeatures;
  }
  return { trainable: base.trainable + n, all: base.all + n };
}

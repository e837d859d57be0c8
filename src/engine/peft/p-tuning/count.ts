/** PEFT's trainable / all parameter numbers for this method (get_nb_trainable_parameters). */
import type { ModuleInfo, TaskType } from '../../models/types';
import { countPromptLearning, type ParamCount, type TiedMap } from '../params';

/**
 * P-tuning: PromptEncoder's embedding [V, D] and its head, as get_nb_trainable_parameters counts them while
 * training (the saved file holds only the [V, D] output). MLP: Linear(D, E), Linear(E, E), Linear(E, D); LSTM:
 * a bidirectional nn.LSTM(D, E, num_layers) then Linear(2E, 2E), Linear(2E, D).
 */
export function countPTuning(
  modules: ModuleInfo[],
  cfg: { numVirtualTokens: number; tokenDim: number; encoderHiddenSize: number; lstm: boolean; encoderNumLayers: number },
  task?: TaskType | null,
  tied: TiedMap = {},
): ParamCount {
  const { tokenDim: D, encoderHiddenSize: E } = cfg;
  const lin = (i: number, o: number) => i * o + o;
  let n = cfg.numVirtualTokens * D;
  if (cfg.lstm) {
    // Per layer and direction: weight_ih [4E, in], weight_hh [4E, E], bias_ih + bias_hh [4E]; in = D, then 2E.
    for (let l = 0; l < cfg.encoderNumLayers; l++) n += 2 * (4 * E * (l === 0 ? D : 2 * E) + 4 * E * E + 8 * E);
    n += lin(2 * E, 2 * E) + lin(2 * E, D);
  } else {
    n += lin(D, E) + lin(E, E) + lin(E, D);
  }
  return countPromptLearning(modules, n, task, tied);
}

/** PEFT's trainable / all parameter numbers for this method (get_nb_trainable_parameters). */
import type { ModuleInfo, TaskType } from '../../models/types';
import { countPromptLearning, type ParamCount, type TiedMap } from '../params';

/**
 * Prefix tuning: the table [V, 2 * L * token_dim] (token_dim = kv heads * head dim), or with prefix_projection
 * the embedding [V, token_dim] and transform Linear(token_dim, E), Linear(E, 2 * L * token_dim).
 */
export function countPrefixTuning(
  modules: ModuleInfo[],
  cfg: { numVirtualTokens: number; tokenDim: number; numLayers: number; prefixProjection: boolean; encoderHiddenSize: number },
  task?: TaskType | null,
  tied: TiedMap = {},
): ParamCount {
  const { numVirtualTokens: V, tokenDim: D, encoderHiddenSize: E } = cfg;
  const out = 2 * cfg.numLayers * D;
  const n = cfg.prefixProjection ? V * D + (D * E + E) + (E * out + out) : V * out;
  return countPromptLearning(modules, n, task, tied);
}

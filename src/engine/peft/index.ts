/** Wrapping a model with a PEFT method from the registry (registry.ts). */
import { EngineError } from '../errors';
import type { Model } from '../models/types';
import type { PeftConfig } from './config';
import type { PeftModel } from './model';
import { methodOf } from './registry';

export type { PeftModel } from './model';
export { LoraModel } from './lora/model';
export { PromptTuningModel } from './prompt-tuning/model';
export { Ia3Model } from './ia3/model';
export { AdaLoraModel } from './adalora/model';
export { PTuningModel } from './p-tuning/model';
export { PrefixTuningModel } from './prefix-tuning/model';
export { METHODS, methodOf } from './registry';

/** Wraps a base model with the method a config names. `encode` is needed for prompt tuning's TEXT init. */
export function createPeftModel(model: Model, config: PeftConfig, seed = 0, encode?: (text: string) => number[]): PeftModel {
  if (config.taskType && config.taskType !== model.task) {
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `The adapter is for task ${config.taskType} but the model is set up for ${model.task} (${model.className}).`,
    );
  }
  return methodOf(config.peftType).create(model, config, { seed, encode });
}

/** PEFT methods by peft_type: each method folder registers its model class here. */
import { EngineError } from '../errors';
import type { Model } from '../models/types';
import type { PeftConfig } from './config';
import { LoraModel } from './lora/model';
import type { PeftModel } from './model';
import { PromptTuningModel } from './prompt-tuning/model';

export type { PeftModel } from './model';
export { LoraModel } from './lora/model';
export { PromptTuningModel } from './prompt-tuning/model';

/** Wraps a base model with the method a config names. `encode` is needed for prompt tuning's TEXT init. */
export function createPeftModel(model: Model, config: PeftConfig, seed = 0, encode?: (text: string) => number[]): PeftModel {
  if (config.taskType && config.taskType !== model.task) {
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `The adapter is for task ${config.taskType} but the model is set up for ${model.task} (${model.className}).`,
    );
  }
  switch (config.peftType) {
    case 'LORA':
      return new LoraModel(model, config, seed);
    case 'PROMPT_TUNING':
      return new PromptTuningModel(model, config, seed, encode);
    default:
      throw new EngineError('BAD_PEFT_CONFIG', `peft_type ${(config as { peftType: string }).peftType} is not supported.`);
  }
}

/**
 * Every PEFT method PEFT Studio implements, one line each (as PEFT's register_peft_method). A method is its
 * folder (`<method>/{config,layer,model,index}.ts`) plus its line here; everything else (adapter files, the
 * CLI's flags, the studio's form) reads the method from this list.
 */
import { EngineError } from '../errors';
import { lora } from './lora';
import type { LoraConfig } from './lora/config';
import type { PeftMethod } from './method';
import { promptTuning } from './prompt-tuning';
import type { PromptTuningConfig } from './prompt-tuning/config';

export const METHODS: readonly PeftMethod<any>[] = [
  lora,
  promptTuning,
];

/** A config of any registered method. */
export type PeftConfig = LoraConfig | PromptTuningConfig;
export type PeftType = PeftConfig['peftType'];

/** PEFT method names that exist in PEFT but not (yet) in PEFT Studio. */
const OTHER_PEFT_TYPES = [
  'PREFIX_TUNING', 'P_TUNING', 'MULTITASK_PROMPT_TUNING', 'CPT', 'ADAPTION_PROMPT', 'ADALORA', 'BOFT', 'IA3',
  'LOHA', 'LOKR', 'OFT', 'POLY', 'LN_TUNING', 'VERA', 'FOURIERFT', 'XLORA', 'HRA', 'VBLORA', 'BONE', 'RANDLORA',
  'TRAINABLE_TOKENS', 'C3A', 'SHIRA', 'MISS', 'ROAD', 'WAVEFT', 'DELORA', 'OSF', 'GRALORA',
];

/** The method of a peft_type; the error lists what is supported. */
export function methodOf(peftType: unknown): PeftMethod<any> {
  const m = METHODS.find((x) => x.peftType === peftType);
  if (m) return m;
  const supported = METHODS.map((x) => x.peftType).join(', ');
  if (typeof peftType === 'string' && OTHER_PEFT_TYPES.includes(peftType)) {
    throw new EngineError('BAD_PEFT_CONFIG', `peft_type '${peftType}' is a PEFT method that PEFT Studio does not support yet (supported: ${supported}).`);
  }
  throw new EngineError('BAD_PEFT_CONFIG', `Unknown peft_type ${JSON.stringify(peftType)} (supported: ${supported}).`);
}

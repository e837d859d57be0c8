/**
 * Every PEFT method PEFT Studio implements, one line each (as PEFT's register_peft_method). A method is its
 * folder (`<method>/{config,layer,model,index}.ts`) plus its line here; everything else (adapter files, the
 * CLI's flags, the studio's form) reads the method from this list.
 */
import { EngineError } from '../errors';
import { quoteValue } from '../quote';
import { adalora } from './adalora';
import type { AdaLoraConfig } from './adalora/config';
import { ia3 } from './ia3';
import type { IA3Config } from './ia3/config';
import { lora } from './lora';
import type { LoraConfig } from './lora/config';
import type { PeftMethod } from './method';
import { pTuning } from './p-tuning';
import type { PTuningConfig } from './p-tuning/config';
import { prefixTuning } from './prefix-tuning';
import type { PrefixTuningConfig } from './prefix-tuning/config';
import { promptTuning } from './prompt-tuning';
import type { PromptTuningConfig } from './prompt-tuning/config';

export const METHODS: readonly PeftMethod<any>[] = [
  lora,
  ia3,
  promptTuning,
  pTuning,
  prefixTuning,
  adalora,
];

/** A config of any registered method. */
export type PeftConfig = LoraConfig | PromptTuningConfig | IA3Config | AdaLoraConfig | PTuningConfig | PrefixTuningConfig;
export type PeftType = PeftConfig['peftType'];

/** What a form or the CLI gives for a method: any of its fields (the method fills defaults and validates). */
export type PeftSettings = Partial<PeftConfig> & { peftType: PeftType };

/**
 * The settings with every field the run fills (schema `runSteps`, such as AdaLoRA's total_step) set to the run's
 * optimizer steps when it was left empty.
 */
export function withRunSteps<T extends PeftSettings>(settings: T, steps: number): T {
  const out: Record<string, unknown> = { ...settings };
  for (const f of methodOf(settings.peftType).schema) if (f.runSteps && out[f.key] == null) out[f.key] = steps;
  return out as T;
}

/**
 * Stands in for the run's step count where there is no run yet (a targets preview): large enough that no
 * schedule check fails; what a preview shows does not depend on it.
 */
export const RUN_STEPS_UNKNOWN = 1_000_000;

/** PEFT method names that exist in PEFT but not (yet) in PEFT Studio. */
const OTHER_PEFT_TYPES = [
  'MULTITASK_PROMPT_TUNING', 'CPT', 'ADAPTION_PROMPT', 'BOFT', 'LOHA', 'LOKR', 'OFT', 'POLY', 'LN_TUNING', 'VERA', 'FOURIERFT', 'XLORA', 'HRA', 'VBLORA', 'BONE', 'RANDLORA',
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
  throw new EngineError('BAD_PEFT_CONFIG', `Unknown peft_type ${quoteValue(peftType)} (supported: ${supported}).`);
}

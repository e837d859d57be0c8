/**
 * The one set of defaults a run starts from, read by the studio's initial settings (src/state/project.ts) and by
 * the CLI's option defaults and --help (src/cli/train.ts, src/cli/peft-options.ts): the same flags left out on
 * the command line and the same form left untouched in the studio train the same way.
 *
 * They are starting points for a short first run on a 100-500M model, not Trainer's dataclass defaults: a few
 * warm-up steps, an evaluation every few steps on a held-out tenth of the data when no validation file is given,
 * and LoRA with alpha = 2r and a little dropout as PEFT's own guides use. An adapter_config.json still holds
 * exactly what PEFT writes for the values the run used (lora_alpha 16 when the default applied).
 */
import type { SchedulerType } from './schedule';

export interface RunDefaults {
  learningRate: number;
  /** Optimizer steps when no epoch count is given. */
  maxSteps: number;
  /** Epochs when the run is limited by epochs instead of steps. */
  epochs: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  maxLength: number;
  warmupSteps: number;
  scheduler: SchedulerType;
  weightDecay: number;
  maxGradNorm: number;
  /** Evaluate every N optimizer steps (and at the end) when there is validation data. */
  evalSteps: number;
  /** The fraction of the training data held out for validation when no validation data is given. */
  validationSplit: number;
  seed: number;
  /** Checkpoints kept (save_total_limit). */
  saveTotalLimit: number;
}

export const RUN_DEFAULTS: Readonly<RunDefaults> = Object.freeze({
  learningRate: 2e-4,
  maxSteps: 60,
  epochs: 1,
  batchSize: 8,
  gradientAccumulationSteps: 1,
  maxLength: 128,
  warmupSteps: 5,
  scheduler: 'linear',
  weightDecay: 0,
  maxGradNorm: 1,
  evalSteps: 10,
  validationSplit: 0.1,
  seed: 42,
  saveTotalLimit: 3,
});

/**
 * Where a method's settings start when they differ from PEFT's dataclass default, by peft_type and config key
 * (camelCase, as the method schemas name them). Fields not listed start at PEFT's default.
 */
export const METHOD_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = Object.freeze({
  LORA: Object.freeze({ loraAlpha: 16, loraDropout: 0.05 }),
});

/** A method field's starting value: the shared default when there is one, else PEFT's (`peftDefault`). */
export function methodDefault(peftType: string, key: string, peftDefault: unknown): unknown {
  const m = METHOD_DEFAULTS[peftType];
  return m && key in m ? m[key] : peftDefault;
}

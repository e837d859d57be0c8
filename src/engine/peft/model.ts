/**
 * What every PEFT method provides to training, inference and export: hooks into the base model's forward,
 * its trainable variables, and its tensors under PEFT's file keys.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import type { LoadedTensor } from '../io/safetensors';
import type { EvalOutput, ForwardHooks, ForwardInput, Model } from '../models/types';
import type { PeftConfigBase } from './method';
import type { AdapterConfigExtras } from './schema';

/** Prefix PEFT puts in front of base-model parameter names in adapter files. */
export const PEFT_PREFIX = 'base_model.model.';

export interface PeftModel {
  readonly peftType: string;
  readonly base: Model;
  readonly config: PeftConfigBase;
  /** Virtual tokens prepended to every input (prompt methods), 0 otherwise. */
  readonly virtualTokens: number;
  /** What adapter_config.json records beyond the config: model facts, resolved targets, trained state. */
  adapterExtras(): Omit<AdapterConfigExtras, 'baseModelNameOrPath'>;
  /** When false the base model runs untouched (the playground's "adapter off"). */
  enabled: boolean;
  hooks(training: boolean): ForwardHooks;
  /** Logits with the adapter applied (when enabled). */
  forward(input: ForwardInput): tf.Tensor;
  /** Labels aligned with the logits forward() returns (prompt tuning prepends -100 for virtual tokens). */
  alignLabels(labels: tf.Tensor): tf.Tensor;
  trainableVariables(): tf.Variable[];
  /** Adapter tensors under the keys PEFT writes to adapter_model.safetensors (insertion order is arbitrary). */
  stateDict(): Map<string, tf.Tensor>;
  /** Loads PEFT-keyed tensors; refuses any missing, unexpected or mis-shaped key. */
  loadStateDict(tensors: Map<string, LoadedTensor>, source?: string): void;
  /**
   * Optional (methods PEFT's merge_and_unload supports): the base parameter `param` (full state-dict name) with the
   * adapter folded in, as a new tensor the caller disposes, or null when the adapter leaves it unchanged.
   * Asked one parameter at a time, so a merged model can be written without a second copy of the weights.
   */
  mergedParam?(param: string): tf.Tensor | null;
  /** trainable / all parameter numbers, as PEFT's get_nb_trainable_parameters reports. */
  dispose(): void;
  /**
   * Optional: a term the method adds to the model's loss whenever a loss is computed, in training and in
   * evaluation (AdaLoRA's orthogonal regulariser, as AdaLoraModel.forward adds it). Not added while disabled.
   */
  regularizer?(): tf.Scalar;
  /**
   * Optional: runs after each optimizer step, once the optimizer has applied `grads` (this step's averaged,
   * clipped gradients, still alive) and before they are disposed; `step` is the 0-based global step (AdaLoRA's
   * update_and_allocate).
   */
  afterStep?(o: { step: number; grads: Map<tf.Variable, tf.Tensor> }): void | Promise<void>;
  /**
   * Optional: what training carries from step to step beyond the trainable variables (AdaLoRA's importance
   * EMAs and its rank pattern so far), so that a checkpoint resumes exactly. Tensors are the method's own.
   */
  trainingState?(): MethodTrainingState;
  /** Restores what trainingState() gave (same model and config). */
  loadTrainingState?(s: { tensors: Map<string, LoadedTensor>; json: Record<string, unknown> }): void;
}

/** A method's training state: named tensors plus JSON (see PeftModel.trainingState). */
export interface MethodTrainingState {
  tensors: Map<string, tf.Tensor>;
  json: Record<string, unknown>;
}

/**
 * Strict load shared by every method. PEFT itself ignores missing keys and silently runs the base model;
 * here a key set or shape that does not fit the model is an error that names what is wrong.
 */
export function loadStrict(expected: Map<string, tf.Variable>, tensors: Map<string, LoadedTensor>, source: string): void {
  const missing = [...expected.keys()].filter((k) => !tensors.has(k));
  const unexpected = [...tensors.keys()].filter((k) => !expected.has(k));
  if (missing.length || unexpected.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${list(missing)}`);
    if (unexpected.length) parts.push(`not in this model: ${list(unexpected)}`);
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `${source} does not fit this model (${parts.join('; ')}). Check that the adapter was trained on this base model with the same target_modules.`,
    );
  }
  for (const [k, v] of expected) {
    const t = tensors.get(k)!;
    if (t.shape.join(',') !== v.shape.join(',')) {
      throw new EngineError('ADAPTER_MISMATCH', `${source}: ${k} has shape [${t.shape}] but this model expects [${v.shape}].`);
    }
    if (!(t.data instanceof Float32Array)) throw new EngineError('ADAPTER_MISMATCH', `${source}: ${k} is not a float tensor.`);
  }
  for (const [k, v] of expected) {
    const t = tensors.get(k)!;
    const value = tf.tensor(t.data as Float32Array, t.shape);
    v.assign(value);
    value.dispose(); // assign shares the data; the variable now owns it
  }
}

function list(keys: string[]): string {
  return keys.slice(0, 4).join(', ') + (keys.length > 4 ? ` and ${keys.length - 4} more` : '');
}

/** Runs the base model with a method's hooks, or bare when disabled. */
export function forwardWith(peft: PeftModel, input: ForwardInput): tf.Tensor {
  return peft.enabled ? peft.base.forward(input, peft.hooks(!!input.training)) : peft.base.forward(input);
}

/** The training loss of the model with the method applied (labels as the batch has them). */
export function peftLoss(peft: PeftModel, input: ForwardInput, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => withRegularizer(peft, peft.base.loss(input, peft.alignLabels(labels), peft.enabled ? peft.hooks(!!input.training) : {})));
}

/** The model's loss plus the method's regulariser, if it has one (and is enabled). */
function withRegularizer(peft: PeftModel, loss: tf.Scalar): tf.Scalar {
  return peft.enabled && peft.regularizer ? tf.add(loss, peft.regularizer()) : loss;
}

/** Loss and argmax predictions with the method applied, for evaluation. */
export function peftEvaluate(peft: PeftModel, input: ForwardInput, labels: tf.Tensor): EvalOutput {
  const run = () => {
    const out = peft.base.evaluate(input, peft.alignLabels(labels), peft.enabled ? peft.hooks(false) : {});
    // PEFT adds AdaLoRA's regulariser to the eval loss too (whenever the output has a loss).
    return { ...out, loss: withRegularizer(peft, out.loss) } as unknown as tf.TensorContainerObject;
  };
  return tf.tidy(run) as unknown as EvalOutput;
}

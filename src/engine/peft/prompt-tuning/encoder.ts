/**
 * What the prompt encoders of P-tuning (PromptEncoder) and prefix tuning (PrefixEncoder with prefix_projection)
 * share: their trainable tensors under PEFT's parameter names (`prompt_encoder.default.<module>.<param>`), with
 * PyTorch's default initialisation, and a strict load of that state. PEFT saves only the encoder's output; this
 * state is what PEFT Studio keeps besides it to resume training (see encoderState() on both models).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedTensor } from '../../io/safetensors';
import type { Rng } from '../../random';
import { uid } from '../lora/layer';
import { loadStrict } from '../model';
import { ownedVariable } from '../../variable';

/** PeftModel's name of the prompt encoder's parameters (adapter "default"). */
export const ENCODER_PREFIX = 'prompt_encoder.default.';

/** Trainable encoder tensors by PEFT parameter name, in creation order. */
export class EncoderState {
  readonly vars = new Map<string, tf.Variable>();

  /** nn.Embedding's default init, N(0, 1). */
  embedding(name: string, rows: number, dim: number, rng: Rng): tf.Variable {
    return this.add(name, tf.tensor2d(rng.fillNormal(rows * dim, 1), [rows, dim]));
  }

  /** nn.Linear(in, out)'s default init: weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)). */
  linear(name: string, inF: number, outF: number, rng: Rng): { w: tf.Variable; b: tf.Variable } {
    const k = 1 / Math.sqrt(inF);
    const w = this.add(`${name}.weight`, tf.tensor2d(rng.fillUniform(outF * inF, -k, k), [outF, inF]));
    const b = this.add(`${name}.bias`, tf.tensor1d(rng.fillUniform(outF, -k, k)));
    return { w, b };
  }

  /** A tensor of given shape drawn from U(-k, k) (nn.LSTM initialises every parameter so, k = 1/sqrt(hidden)). */
  uniform(name: string, shape: number[], k: number, rng: Rng): tf.Variable {
    return this.add(name, tf.tensor(rng.fillUniform(shape.reduce((a, b) => a * b, 1), -k, k), shape));
  }

  private add(name: string, init: tf.Tensor): tf.Variable {
    const v = ownedVariable(init, true, `prompt_encoder_${name.replace(/[^A-Za-z0-9_]/g, '_')}_${uid()}`);
    this.vars.set(`${ENCODER_PREFIX}${name}`, v);
    return v;
  }

  /** Loads `prompt_encoder.default.*` tensors; refuses a missing, extra or mis-shaped one. */
  load(tensors: Map<string, LoadedTensor>, source: string): void {
    loadStrict(this.vars, tensors, source);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** nn.Linear on rows: x [N, in] -> x W^T + b [N, out]. */
export function linearRows(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D, false, true), b);
}

/**
 * The last tensor a model handed out that it computed rather than stored (an encoder output): disposed when
 * the next one replaces it or the model is disposed. Inside a tidy scope (every forward, loss and gradient) the
 * scope frees it first and this dispose is a no-op; outside one (a decoding's hooks) it bounds what is kept to
 * one tensor per model instead of one per call.
 */
export class Handout {
  private last: tf.Tensor | null = null;

  give(t: tf.Tensor): tf.Tensor {
    this.last?.dispose();
    this.last = t;
    return t;
  }

  dispose(): void {
    this.last?.dispose();
    this.last = null;
  }
}

/**
 * One LoRA layer, as peft/tuners/lora/layer.py computes it:
 *   y = base(x) + scaling * B(A(dropout(x)))     A: [r, in], B: [out, r]
 * scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora. Conv1D targets (fan_in_fan_out) keep the
 * same A/B layout; only a merge has to transpose the delta.
 */
import * as tf from '@tensorflow/tfjs';
import { matmulLast } from '../../models/layers';
import { dropout } from '../../ops/fused';
import { ownedVariable } from '../../variable';
import type { Rng } from '../../random';

export type LoraInit = boolean | 'gaussian';

export interface LoraLayerSpec {
  /** Module name in the base model, e.g. transformer.h.0.attn.c_attn. */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** true for GPT-2 Conv1D (weight stored [in, out]). */
  fanInFanOut: boolean;
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  dropout: number;
}

export function loraScaling(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

export class LoraLayer {
  readonly spec: LoraLayerSpec;
  readonly A: tf.Variable; // [r, in]
  readonly B: tf.Variable; // [out, r]
  readonly scaling: number;

  constructor(spec: LoraLayerSpec, init: LoraInit, rng: Rng) {
    this.spec = spec;
    const { r, inFeatures: fin, outFeatures: fout } = spec;
    this.scaling = loraScaling(r, spec.loraAlpha, spec.useRslora);
    let a: Float32Array;
    let b: Float32Array;
    if (init === 'gaussian') {
      // PEFT: normal_(A, std=1/r); B zeros.
      a = rng.fillNormal(r * fin, 1 / r);
      b = new Float32Array(fout * r);
    } else {
      // kaiming_uniform_(a=sqrt(5)) on a [r, in] weight is U(-1/sqrt(in), 1/sqrt(in)) -- nn.Linear's default.
      a = rng.fillUniform(r * fin, -1 / Math.sqrt(fin), 1 / Math.sqrt(fin));
      // init_lora_weights=True zeroes B so the adapter starts as the identity; False keeps nn.Linear's default.
      b = init === false ? rng.fillUniform(fout * r, -1 / Math.sqrt(r), 1 / Math.sqrt(r)) : new Float32Array(fout * r);
    }
    const tag = spec.module.replace(/[^A-Za-z0-9_]/g, '_');
    this.A = ownedVariable(tf.tensor2d(a, [r, fin]), true, `lora_A_${tag}_${uid()}`);
    this.B = ownedVariable(tf.tensor2d(b, [fout, r]), true, `lora_B_${tag}_${uid()}`);
  }

  /** The LoRA branch for input x [..., in] -> [..., out]; `seed` draws the dropout mask's seed. */
  delta(x: tf.Tensor, training: boolean, seed: () => number): tf.Tensor {
    const h = training && this.spec.dropout > 0 ? dropout(x, this.spec.dropout, seed()) : x;
    // Scaling on the r-wide side: the same product, and no [..., out]-sized tensor saved for the backward.
    const down = tf.mul(matmulLast(h, this.A, true), this.scaling); // [..., r]
    return matmulLast(down, this.B, true); // [..., out]
  }

  /** scaling * B @ A laid out like the base weight ([out, in] for Linear, [in, out] for Conv1D). */
  mergedDelta(): tf.Tensor2D {
    return tf.tidy(() => {
      const d = tf.mul(tf.matMul(this.B, this.A), this.scaling) as tf.Tensor2D;
      return this.spec.fanInFanOut ? d.transpose() : d;
    });
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }
}

let counter = 0;
/** tfjs variable names must be unique per process. */
export function uid(): number {
  return ++counter;
}

/**
 * One LoRA layer, as peft/tuners/lora/layer.py computes it:
 *   y = base(x) + scaling * B(A(dropout(x)))     A: [r, in], B: [out, r]
 * scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora. Conv1D targets (fan_in_fan_out) keep the
 * same A/B layout; only a merge has to transpose the delta. With DoRA (dora.ts) a magnitude vector m [out]
 * rescales every output row of the updated weight.
 */
import * as tf from '@tensorflow/tfjs';
import { matmulLast } from '../../models/layers';
import type { LinearModule } from '../../models/types';
import { dropout } from '../../ops/fused';
import { ownedVariable } from '../../variable';
import type { Rng } from '../../random';
import { alongOut, doraWeightNorm, rowNorm } from './dora';

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
  /** DoRA: learn lora_magnitude_vector [out] (then the constructor needs the base weight). */
  useDora?: boolean;
}

export function loraScaling(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

export class LoraLayer {
  readonly spec: LoraLayerSpec;
  readonly A: tf.Variable; // [r, in]
  readonly B: tf.Variable; // [out, r]
  readonly scaling: number;
  /** DoRA's lora_magnitude_vector [out]; absent for plain LoRA. */
  readonly magnitude?: tf.Variable;

  /** `baseWeight` (the module's weight in its own layout) is read once, for DoRA's initial magnitude. */
  constructor(spec: LoraLayerSpec, init: LoraInit, rng: Rng, baseWeight?: tf.Tensor) {
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
    if (spec.useDora) {
      if (!baseWeight) throw new Error(`internal: DoRA layer ${spec.module} needs its base weight`);
      // PEFT's dora_init: m = ||W + s * B @ A|| per output row, so the adapter starts as the base model
      // (with B = 0 that is ||W||; init_lora_weights=false keeps the random B in it).
      const m = doraWeightNorm(baseWeight, spec.fanInFanOut, this.A, this.B, this.scaling);
      this.magnitude = ownedVariable(m, true, `lora_magnitude_${tag}_${uid()}`);
    }
  }

  /** The LoRA branch for input x [..., in] -> [..., out]; `seed` draws the dropout mask's seed. */
  delta(x: tf.Tensor, training: boolean, seed: () => number): tf.Tensor {
    const h = training && this.spec.dropout > 0 ? dropout(x, this.spec.dropout, seed()) : x;
    // Scaling on the r-wide side: the same product, and no [..., out]-sized tensor saved for the backward.
    const down = tf.mul(matmulLast(h, this.A, true), this.scaling); // [..., r]
    return matmulLast(down, this.B, true); // [..., out]
  }

  /**
   * The DoRA layer's output (PEFT's lora.Linear.forward with DoraLinearLayer): with n = ||V + s B A|| (detached)
   *   no dropout:  y = base(x) + (m/n - 1) * (base(x) - bias) + (m/n) * s * B A x,
   *   dropout:     y = base(x) + (m/n - 1) * (V xd) + (m/n) * s * B A xd,   xd = dropout(x)
   * (PEFT takes the second path only while training with lora_dropout > 0).
   */
  dora(x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor, mod: LinearModule, training: boolean, seed: () => number): tf.Tensor {
    const scale = tf.div(this.magnitude!, doraWeightNorm(mod.weight, mod.conv1d, this.A, this.B, this.scaling)); // [out]
    const y = base(x);
    if (training && this.spec.dropout > 0) {
      const xd = dropout(x, this.spec.dropout, seed());
      const plain = matmulLast(xd, mod.weight, !mod.conv1d); // V xd, no bias (PEFT's F.linear(x, W))
      return tf.add(y, tf.add(tf.mul(tf.sub(scale, 1), plain), tf.mul(scale, this.delta(xd, false, seed))));
    }
    // The same sum regrouped: (m/n) * (base(x) - bias + s B A x) + bias.
    const noBias = mod.bias ? tf.sub(y, mod.bias) : y;
    const out = tf.mul(scale, tf.add(noBias, this.delta(x, false, seed)));
    return mod.bias ? tf.add(out, mod.bias) : out;
  }

  /**
   * The base weight with this layer folded in, as PEFT's merge: W + delta, and with DoRA that sum rescaled per
   * output row by m / ||W + delta|| (the norm taken from the weights being merged).
   */
  mergedWeight(weight: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const w = tf.add(weight, this.mergedDelta());
      if (!this.magnitude) return w;
      const conv1d = this.spec.fanInFanOut;
      return tf.mul(w, alongOut(tf.div(this.magnitude, rowNorm(w, conv1d)), conv1d));
    });
  }

  /** scaling * B @ A laid out like the base weight ([out, in] for Linear, [in, out] for Conv1D). */
  mergedDelta(): tf.Tensor2D {
    return tf.tidy(() => {
      const d = tf.mul(tf.matMul(this.B, this.A), this.scaling) as tf.Tensor2D;
      return this.spec.fanInFanOut ? d.transpose() : d;
    });
  }

  /** The layer's trainable variables: A, B (and DoRA's magnitude). */
  variables(): tf.Variable[] {
    return this.magnitude ? [this.A, this.B, this.magnitude] : [this.A, this.B];
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
    this.magnitude?.dispose();
  }
}

let counter = 0;
/** tfjs variable names must be unique per process. */
export function uid(): number {
  return ++counter;
}

/**
 * One AdaLoRA layer, as peft/tuners/adalora/layer.py's SVDLinear computes it:
 *   y = base(x) + (dropout(x) @ (A * E)^T @ B^T) * scaling / (ranknum + 1e-5)
 * A: [r, in] (right singular vectors), E: [r, 1] (singular values), B: [out, r] (left singular vectors),
 * scaling = lora_alpha (or r when lora_alpha is 0), ranknum = the rank the layer was created with (init_r; a
 * frozen value PEFT does not save, kept at init_r when a pruned adapter is loaded). Pruning zeroes entries of E;
 * the shapes only shrink when the adapter is saved (or a saved one is loaded).
 */
import * as tf from '@tensorflow/tfjs';
import { matmulLast } from '../../models/layers';
import { dropout } from '../../ops/fused';
import type { Rng } from '../../random';
import { ownedVariable } from '../../variable';

export interface SvdLayerSpec {
  /** Module name in the base model, e.g. transformer.h.0.attn.c_attn. */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** true for GPT-2 Conv1D (weight stored [in, out]); only merging cares. */
  fanInFanOut: boolean;
  /** Rank of the tensors (init_r, or what a loaded rank_pattern kept; may be 0). */
  r: number;
  /** The rank the update is divided by (init_r). */
  ranknum: number;
  loraAlpha: number;
  dropout: number;
}

let counter = 0;

/** One adapted module's A, E, B and its forward branch, regulariser terms and merged delta. */
export class SvdLayer {
  readonly spec: SvdLayerSpec;
  readonly A: tf.Variable; // [r, in]
  readonly E: tf.Variable; // [r, 1]
  readonly B: tf.Variable; // [out, r]
  /** scaling / (ranknum + 1e-5), applied on the r-wide side of the product. */
  readonly factor: number;

  constructor(spec: SvdLayerSpec, init: boolean | 'gaussian', rng: Rng) {
    this.spec = spec;
    const { r, inFeatures: fin, outFeatures: fout } = spec;
    const scaling = spec.loraAlpha > 0 ? spec.loraAlpha : r;
    // ranknum is a float32 parameter in PEFT: ranknum + 1e-5 is rounded to float32 before the division.
    this.factor = scaling / Math.fround(spec.ranknum + 1e-5);
    // reset_lora_parameters (any truthy init_lora_weights, 'gaussian' included): E = 0, A and B ~ N(0, 0.02).
    // init_lora_weights=False keeps torch.randn for all three.
    const std = init ? 0.02 : 1;
    const a = rng.fillNormal(r * fin, std);
    const e = init ? new Float32Array(r) : rng.fillNormal(r, 1);
    const b = rng.fillNormal(fout * r, std);
    const tag = `${spec.module.replace(/[^A-Za-z0-9_]/g, '_')}_${++counter}`;
    this.A = ownedVariable(tf.tensor2d(a, [r, fin]), true, `adalora_A_${tag}`);
    this.E = ownedVariable(tf.tensor2d(e, [r, 1]), true, `adalora_E_${tag}`);
    this.B = ownedVariable(tf.tensor2d(b, [fout, r]), true, `adalora_B_${tag}`);
  }

  get rank(): number {
    return this.spec.r;
  }

  /** The AdaLoRA branch for x [..., in] -> [..., out], or null for a rank-0 layer (it adds nothing). */
  delta(x: tf.Tensor, training: boolean, seed: () => number): tf.Tensor | null {
    // Zero-sized products are skipped: the update is exactly 0 (and tfjs-wasm's XNNPACK refuses empty matrices).
    if (this.spec.r === 0) return null;
    const h = training && this.spec.dropout > 0 ? dropout(x, this.spec.dropout, seed()) : x;
    const ae = tf.mul(this.A, this.E); // [r, in]: row i scaled by singular value i
    const down = tf.mul(matmulLast(h, ae, true), this.factor); // [..., r]
    return matmulLast(down, this.B, true); // [..., out]
  }

  /** ||A A^T - I||_F + ||B^T B - I||_F, the two terms of PEFT's orthogonal regulariser (0 for rank 0). */
  orthTerms(): tf.Scalar[] {
    if (this.spec.r === 0) return [tf.scalar(0), tf.scalar(0)];
    const eye = tf.eye(this.spec.r);
    const fro = (p: tf.Tensor) => tf.sqrt(tf.sum(tf.square(tf.sub(p, eye)))) as tf.Scalar;
    return [fro(tf.matMul(this.A, this.A, false, true)), fro(tf.matMul(this.B, this.B, true, false))];
  }

  /** (B @ (A * E)) * scaling / (ranknum + 1e-5), laid out like the base weight ([in, out] for Conv1D). */
  mergedDelta(): tf.Tensor2D {
    return tf.tidy(() => {
      const { r, inFeatures, outFeatures, fanInFanOut } = this.spec;
      if (r === 0) return tf.zeros(fanInFanOut ? [inFeatures, outFeatures] : [outFeatures, inFeatures]) as tf.Tensor2D;
      const d = tf.mul(tf.matMul(this.B, tf.mul(this.A, this.E) as tf.Tensor2D), this.factor) as tf.Tensor2D;
      return fanInFanOut ? d.transpose() : d;
    });
  }

  dispose(): void {
    this.A.dispose();
    this.E.dispose();
    this.B.dispose();
  }
}

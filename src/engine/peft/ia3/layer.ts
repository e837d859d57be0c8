/**
 * One (IA)^3 layer, as peft/tuners/ia3/layer.py (0.15.2) Linear computes it for nn.Linear and GPT-2 Conv1D:
 *   not feed-forward:  y = base(x) * l       l: ia3_l [out, 1]  (the bias is scaled too)
 *   feed-forward:      y = base(x * l)       l: ia3_l [1, in]   (the bias is not)
 * l is flattened to broadcast over the last axis.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../random';
import { ownedVariable } from '../../variable';
import { uid } from '../lora/layer';

export interface Ia3LayerSpec {
  /** Module name in the base model, e.g. transformer.h.0.mlp.c_proj. */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** Scales the input instead of the output. */
  feedforward: boolean;
  /** true for GPT-2 Conv1D (weight stored [in, out]). */
  fanInFanOut: boolean;
}

export class Ia3Layer {
  readonly spec: Ia3LayerSpec;
  /** ia3_l: [out, 1], or [1, in] for a feed-forward module (PEFT's shapes, which the file keeps). */
  readonly l: tf.Variable;

  /** init true: ones (PEFT's reset_ia3_parameters); false: N(0, 1) (torch.randn, PEFT's value before the reset). */
  constructor(spec: Ia3LayerSpec, init: boolean, rng: Rng) {
    this.spec = spec;
    const n = spec.feedforward ? spec.inFeatures : spec.outFeatures;
    const data = init ? new Float32Array(n).fill(1) : rng.fillNormal(n, 1);
    const shape: [number, number] = spec.feedforward ? [1, n] : [n, 1];
    this.l = ownedVariable(tf.tensor2d(data, shape), true, `ia3_l_${spec.module.replace(/[^A-Za-z0-9_]/g, '_')}_${uid()}`);
  }

  /** The wrapped module's output for input x [..., in]. */
  apply(x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
    const l = this.l.reshape([-1]);
    return this.spec.feedforward ? base(tf.mul(x, l)) : tf.mul(base(x), l);
  }

  /**
   * The base weight with l folded in (PEFT's merge: W * transpose(l, fan_in_fan_out)): along out for an
   * output-scaling module, along in for a feed-forward one, in the weight's own layout.
   */
  mergedWeight(weight: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.mul(weight, this.spec.fanInFanOut ? this.l.transpose() : this.l));
  }

  /** The bias after a merge: scaled by l for an output-scaling module, unchanged for a feed-forward one. */
  mergedBias(bias: tf.Tensor): tf.Tensor {
    return this.spec.feedforward ? bias.clone() : tf.tidy(() => tf.mul(bias, this.l.reshape([-1])));
  }

  dispose(): void {
    this.l.dispose();
  }
}

/**
 * AdamW exactly as torch.optim.AdamW (defaults betas (0.9, 0.999), eps 1e-8) with decoupled weight decay:
 *   p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
import * as tf from '@tensorflow/tfjs';
import { ownedVariable } from '../variable';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  weightDecay: number;
  private t = 0;
  private readonly state = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable }>();

  constructor(opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  get step(): number {
    return this.t;
  }

  /** One update of every variable that has a gradient, at learning rate `lr`. */
  apply(grads: Map<tf.Variable, tf.Tensor>, lr: number): void {
    this.t += 1;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = Math.sqrt(1 - this.beta2 ** this.t);
    for (const [p, g] of grads) {
      let s = this.state.get(p);
      if (!s) {
        s = { m: ownedVariable(tf.zerosLike(p), false), v: ownedVariable(tf.zerosLike(p), false) };
        this.state.set(p, s);
      }
      const { m, v } = s;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const decayed = this.weightDecay ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v), bc2), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    }
  }

  /** Optimizer state bytes (two moments per trainable value), for memory estimates. */
  stateBytes(): number {
    let n = 0;
    for (const { m } of this.state.values()) n += m.size * 8;
    return n;
  }

  dispose(): void {
    for (const { m, v } of this.state.values()) (m.dispose(), v.dispose());
    this.state.clear();
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: scales all gradients by max_norm / (total_norm + 1e-6) when that is < 1.
 * Returns the new gradients (old ones disposed) and the norm before clipping.
 */
export async function clipGradNorm(grads: Map<tf.Variable, tf.Tensor>, maxNorm: number): Promise<{ grads: Map<tf.Variable, tf.Tensor>; norm: number }> {
  const normT = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = (await normT.data())[0];
  normT.dispose();
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return { grads, norm };
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return { grads, norm };
  const out = new Map<tf.Variable, tf.Tensor>();
  for (const [v, g] of grads) {
    out.set(v, tf.mul(g, coef));
    g.dispose();
  }
  return { grads: out, norm };
}

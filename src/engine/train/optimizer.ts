/**
 * AdamW exactly as torch.optim.AdamW (defaults betas (0.9, 0.999), eps 1e-8) with decoupled weight decay:
 *   p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Param groups (torch's per-group lr and weight_decay) come in as a per-variable scale of the step's lr and a
 * per-variable weight decay, which is what LoRA+ needs (create_loraplus_optimizer).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import { PEFT_PREFIX, type PeftModel } from '../peft/model';
import { ownedVariable } from '../variable';

/** A torch param group as seen by one variable: its lr is the step's lr times lrScale. */
export interface ParamGroup {
  /** Multiplies the step's learning rate (a scheduler scales every group's lr by the same factor). */
  lrScale?: number;
  /** This group's weight_decay (default: the optimizer's). */
  weightDecay?: number;
}

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

  /** One update of every variable that has a gradient, at learning rate `lr` (scaled per variable by `groups`). */
  apply(grads: Map<tf.Variable, tf.Tensor>, lr: number, groups?: Map<tf.Variable, ParamGroup>): void {
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
      const group = groups?.get(p);
      const plr = lr * (group?.lrScale ?? 1);
      const wd = group?.weightDecay ?? this.weightDecay;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const decayed = wd ? tf.mul(p, 1 - plr * wd) : p;
        const denom = tf.add(tf.div(tf.sqrt(v), bc2), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), plr / bc1)));
      });
    }
  }

  /**
   * The step count and both moments of each of `vars` (null where a variable has not been stepped yet), as a
   * checkpoint keeps them. The tensors are the optimizer's own: read them, don't dispose them.
   */
  exportState(vars: tf.Variable[]): { step: number; moments: ({ m: tf.Tensor; v: tf.Tensor } | null)[] } {
    return { step: this.t, moments: vars.map((p) => this.state.get(p) ?? null) };
  }

  /** Restores what exportState gave (values as arrays), for the same variables in the same order. */
  importState(vars: tf.Variable[], st: { step: number; moments: ({ m: Float32Array; v: Float32Array } | null)[] }): void {
    if (st.moments.length !== vars.length) {
      throw new EngineError('BAD_CHECKPOINT', `The checkpoint's optimizer state has ${st.moments.length} tensors but the model trains ${vars.length}.`);
    }
    vars.forEach((p, i) => {
      const mv = st.moments[i];
      if (mv && (mv.m.length !== p.size || mv.v.length !== p.size)) {
        throw new EngineError('BAD_CHECKPOINT', `The checkpoint's optimizer state for trainable tensor ${i} has ${mv.m.length} values but the tensor has ${p.size}.`);
      }
    });
    this.dispose();
    this.t = st.step;
    vars.forEach((p, i) => {
      const mv = st.moments[i];
      if (mv) this.state.set(p, { m: ownedVariable(tf.tensor(mv.m, p.shape), false), v: ownedVariable(tf.tensor(mv.v, p.shape), false) });
    });
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

/** Module classes in transformers' ALL_LAYERNORM_LAYERS (nn.LayerNorm; LlamaRMSNorm appends itself). */
const NORM_TYPES = /^(LayerNorm|LlamaRMSNorm)$/;

/**
 * LoRA+ (PEFT's create_loraplus_optimizer) as per-variable groups: every lora_B tensor and every 1-D tensor
 * (biases, DoRA magnitudes, norm weights of modules_to_save copies) trains at lr * ratio, the rest at lr.
 * Weight decay (PEFT's loraplus_weight_decay) applies to all of them except the biases and norm weights of the
 * B group (groupB_no_decay). PEFT's "embedding" group is left out: its test looks at the parameter instead of
 * its module, so in PEFT 0.15.2 it is always empty. Variables are found by their PEFT file key, so call this
 * before training (a pruned AdaLoRA stateDict holds copies).
 */
export function loraPlusGroups(peft: PeftModel, ratio: number, weightDecay: number): Map<tf.Variable, ParamGroup> {
  if (!(ratio > 0) || !Number.isFinite(ratio)) throw new EngineError('BAD_ARGUMENT', `loraplus_lr_ratio must be a number > 0, got ${ratio}`);
  const typeOf = new Map(peft.base.modules.map((m) => [m.name, m.type]));
  const trainable = new Set(peft.trainableVariables());
  const out = new Map<tf.Variable, ParamGroup>();
  for (const [key, t] of peft.stateDict()) {
    const v = t as tf.Variable;
    if (!trainable.has(v)) continue;
    if (!key.includes('lora_B') && t.rank !== 1) {
      out.set(v, { lrScale: 1, weightDecay });
      continue;
    }
    // get_parameter_names(model, ALL_LAYERNORM_LAYERS) minus names containing "bias": what decays.
    const name = key.startsWith(PEFT_PREFIX) ? key.slice(PEFT_PREFIX.length) : key;
    const module = name.slice(0, name.lastIndexOf('.')).replace(/\.base_layer$/, '');
    const decays = !key.includes('bias') && !NORM_TYPES.test(typeOf.get(module) ?? '');
    out.set(v, { lrScale: ratio, weightDecay: decays ? weightDecay : 0 });
  }
  return out;
}

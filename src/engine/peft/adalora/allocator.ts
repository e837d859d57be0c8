/**
 * PEFT's RankAllocator (peft/tuners/adalora/layer.py) and AdaLoraModel.update_and_allocate: per-element
 * importance |p * grad| smoothed by two EMAs, a cubic budget schedule, and masking of the least important
 * singular values. The EMAs live on the backend (one pair per adapter tensor); only the per-triplet scores
 * (init_r numbers per module) are read back, and only on the steps that allocate.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import { ownedVariable } from '../../variable';
import type { SvdLayer } from './layer';

export interface ScheduleConfig {
  targetR: number;
  tinit: number;
  tfinal: number;
  deltaT: number;
  totalStep: number;
  beta1: number;
  beta2: number;
}

/** What one update_and_allocate did, for the trajectory and the UI. */
export interface AllocationStep {
  globalStep: number;
  phase: 'warmup' | 'budget' | 'final-allocation' | 'fixed-pattern';
  budget: number;
  /** Whether singular values were masked at this step. */
  masked: boolean;
}

type RankPattern = Record<string, boolean[]>;

/** `<module>.lora_E`, the key rank_pattern uses for a module once saved. */
export const patternKey = (module: string) => `${module}.lora_E`;

interface Ema {
  ipt: tf.Variable;
  unc: tf.Variable;
}

/** Importance scores and budget allocation over an AdaLoRA model's layers (PEFT's RankAllocator). */
export class RankAllocator {
  private readonly cfg: ScheduleConfig;
  /** Modules in RankAllocator's order (its sorted name_set). */
  private readonly names: string[];
  private readonly layers: Map<string, SvdLayer>;
  readonly initBudget: number;
  readonly targetBudget: number;
  private readonly ema = new Map<tf.Variable, Ema>();

  constructor(layers: Map<string, SvdLayer>, cfg: ScheduleConfig) {
    this.cfg = cfg;
    this.layers = layers;
    this.names = [...layers.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.initBudget = this.names.reduce((n, m) => n + layers.get(m)!.rank, 0);
    this.targetBudget = cfg.targetR * this.names.length;
  }

  /** budget_schedule: the rank budget at `step` and whether this step masks. */
  budgetSchedule(step: number): { budget: number; mask: boolean } {
    const { tinit, tfinal, totalStep, deltaT } = this.cfg;
    if (step <= tinit) return { budget: this.initBudget, mask: false };
    if (step > totalStep - tfinal) return { budget: this.targetBudget, mask: true };
    const mul = 1 - (step - tinit) / (totalStep - tfinal - tinit);
    // Python's int() of the cubic interpolation truncates toward zero.
    return { budget: Math.trunc((this.initBudget - this.targetBudget) * mul ** 3 + this.targetBudget), mask: step % deltaT === 0 };
  }

  /** update_ipt: called after the optimizer step, so p is the updated value and g this step's gradient. */
  updateImportance(grads: Map<tf.Variable, tf.Tensor>): void {
    const { beta1: b1, beta2: b2 } = this.cfg;
    for (const name of this.names) {
      const l = this.layers.get(name)!;
      for (const p of [l.A, l.E, l.B]) {
        const g = grads.get(p);
        if (!g || p.size === 0) continue;
        let s = this.ema.get(p);
        if (!s) {
          s = { ipt: ownedVariable(tf.zerosLike(p), false), unc: ownedVariable(tf.zerosLike(p), false) };
          this.ema.set(p, s);
        }
        const { ipt: avgIpt, unc: avgUnc } = s;
        tf.tidy(() => {
          const ipt = tf.abs(tf.mul(p, g));
          const nextIpt = tf.add(tf.mul(avgIpt, b1), tf.mul(ipt, 1 - b1));
          avgUnc.assign(tf.add(tf.mul(avgUnc, b2), tf.mul(tf.abs(tf.sub(ipt, nextIpt)), 1 - b2)));
          avgIpt.assign(nextIpt);
        });
      }
    }
  }

  /** _element_score of one tensor (0 where it has no score yet, as PEFT's zero-initialised EMAs). */
  private score(p: tf.Variable): tf.Tensor {
    const s = this.ema.get(p);
    return s ? tf.mul(s.ipt, s.unc) : tf.zerosLike(p);
  }

  /**
   * mask_to_budget: triplet i of a module scores S_i = s_E[i] + (mean_j s_A[i, j] + mean_k s_B[k, i]); every
   * singular value whose S is at or below the (initBudget - budget)-th smallest S is set to 0 (A, B and the
   * optimizer state are untouched). Returns the rank pattern (S above the threshold).
   */
  async maskToBudget(budget: number): Promise<RankPattern> {
    const live = this.names.filter((n) => this.layers.get(n)!.rank > 0);
    const scoreT = tf.tidy(() => {
      const per = live.map((n) => {
        const l = this.layers.get(n)!;
        const sA = tf.mean(this.score(l.A), 1);
        const sB = tf.mean(this.score(l.B), 0);
        return tf.add(tf.reshape(this.score(l.E), [-1]), tf.add(sA, sB));
      });
      return per.length ? tf.concat(per) : tf.zeros([0]);
    });
    const scores = (await scoreT.data()) as Float32Array;
    scoreT.dispose();
    // torch.kthvalue(k): the k-th smallest value (1-based).
    const k = this.initBudget - budget;
    const threshold = k >= 1 ? Float64Array.from(scores).sort()[k - 1] : -Infinity;
    const pattern: RankPattern = {};
    let at = 0;
    for (const n of this.names) {
      const l = this.layers.get(n)!;
      const keep = Array.from(scores.subarray(at, at + l.rank), (s) => !(s <= threshold));
      at += l.rank;
      pattern[patternKey(n)] = keep;
      this.applyMask(l, keep);
    }
    return pattern;
  }

  /** mask_using_rank_pattern: zeroes the singular values a saved pattern drops. */
  maskWithPattern(pattern: RankPattern): void {
    for (const n of this.names) {
      const keep = pattern[patternKey(n)];
      if (keep) this.applyMask(this.layers.get(n)!, keep);
    }
  }

  private applyMask(l: SvdLayer, keep: boolean[]): void {
    if (l.rank === 0 || keep.every(Boolean)) return;
    tf.tidy(() => l.E.assign(tf.mul(l.E, tf.tensor2d(keep.map((b) => (b ? 1 : 0)), [l.rank, 1]))));
  }

  /** The importance EMAs by `<module>.<A|E|B>.<ipt|unc>` (the allocator's own tensors), for checkpoints. */
  exportState(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const name of this.names) {
      const l = this.layers.get(name)!;
      for (const [part, p] of [['A', l.A], ['E', l.E], ['B', l.B]] as const) {
        const s = this.ema.get(p);
        if (s) (out.set(`${name}.${part}.ipt`, s.ipt), out.set(`${name}.${part}.unc`, s.unc));
      }
    }
    return out;
  }

  /** Restores exportState's tensors (missing ones: no score yet, as after reset_ipt). */
  importState(t: Map<string, { shape: number[]; data: Float32Array }>): void {
    const next = new Map<tf.Variable, Ema>();
    for (const name of this.names) {
      const l = this.layers.get(name)!;
      for (const [part, p] of [['A', l.A], ['E', l.E], ['B', l.B]] as const) {
        const ipt = t.get(`${name}.${part}.ipt`);
        const unc = t.get(`${name}.${part}.unc`);
        if (!ipt && !unc) continue;
        if (!ipt || !unc || ipt.data.length !== p.size || unc.data.length !== p.size) {
          tf.dispose([...next.values()].flatMap((e) => [e.ipt, e.unc]));
          throw new EngineError('BAD_CHECKPOINT', `The checkpoint's AdaLoRA importance scores for ${name}.${part} do not fit this model.`);
        }
        next.set(p, { ipt: ownedVariable(tf.tensor(ipt.data, p.shape), false), unc: ownedVariable(tf.tensor(unc.data, p.shape), false) });
      }
    }
    this.reset();
    for (const [p, e] of next) this.ema.set(p, e);
  }

  /** reset_ipt: forgets every score (after the final allocation). */
  reset(): void {
    for (const { ipt, unc } of this.ema.values()) (ipt.dispose(), unc.dispose());
    this.ema.clear();
  }

  /**
   * AdaLoraModel.update_and_allocate(global_step): scores and scheduled masking before the final phase, one
   * forced allocation to the target budget at total_step - tfinal (its pattern becomes rank_pattern), and the
   * saved pattern re-applied on every later step. Returns the new rank pattern when one was allocated.
   */
  async step(globalStep: number, grads: Map<tf.Variable, tf.Tensor>, current: RankPattern | null): Promise<{ info: AllocationStep; pattern: RankPattern | null }> {
    const end = this.cfg.totalStep - this.cfg.tfinal;
    if (globalStep < end) {
      this.updateImportance(grads);
      const { budget, mask } = this.budgetSchedule(globalStep);
      const phase = globalStep <= this.cfg.tinit ? 'warmup' : 'budget';
      const pattern = mask ? await this.maskToBudget(budget) : null;
      return { info: { globalStep, phase, budget, masked: mask }, pattern };
    }
    if (globalStep === end) {
      const { budget } = this.budgetSchedule(globalStep);
      const pattern = await this.maskToBudget(budget);
      this.reset();
      return { info: { globalStep, phase: 'final-allocation', budget, masked: true }, pattern };
    }
    if (current) this.maskWithPattern(current);
    return { info: { globalStep, phase: 'fixed-pattern', budget: this.targetBudget, masked: !!current }, pattern: null };
  }

  dispose(): void {
    this.reset();
  }
}

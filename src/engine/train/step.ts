/**
 * Loss and gradients for one batch, and one optimizer step over accumulated micro-batches. Gradients are
 * taken for the trainable variables only (LoRA A/B, prompt embeddings, modules_to_save copies).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import type { TaskType } from '../models/types';
import type { Batch } from './data';
import { gradients } from '../ops/autodiff';
import { peftLoss, type PeftModel } from '../peft/model';
import { AdamW, clipGradNorm, type ParamGroup } from './optimizer';

/** Something that turns a batch into a scalar loss over trainable variables: a PEFT model or a base model. */
export interface Trainable {
  task: TaskType;
  loss(batch: Batch, training: boolean): tf.Scalar;
  variables(): tf.Variable[];
  /** Runs after the optimizer applied a step, with that step's gradients (PeftModel.afterStep). */
  afterStep?(o: { step: number; grads: Map<tf.Variable, tf.Tensor> }): void | Promise<void>;
}

export interface TrainableOptions {
  /** Gradient checkpointing (recompute each block in the backward pass). */
  checkpoint?: boolean;
  /** Draws the dropout seed of each forward pass. */
  seed?: () => number;
}

/** A PEFT model as the training step sees it. */
export function peftTrainable(peft: PeftModel, o: TrainableOptions = {}): Trainable {
  return {
    task: peft.base.task,
    loss: (b, training) =>
      peftLoss(peft, { inputIds: b.inputIds, attentionMask: b.attentionMask, training, checkpoint: o.checkpoint, seed: o.seed?.() }, b.labels),
    variables: () => peft.trainableVariables(),
    afterStep: peft.afterStep ? (a) => peft.afterStep!(a) : undefined,
  };
}

/**
 * Loss value and gradients (by variable) for one batch. Values are read back asynchronously: WebGPU's
 * synchronous readback is slow and, on some adapters (SwiftShader), returns wrong values.
 */
export async function lossAndGrads(m: Trainable, batch: Batch, training = true): Promise<{ loss: number; grads: Map<tf.Variable, tf.Tensor> }> {
  const vars = m.variables();
  const { value, grads } = gradients(() => m.loss(batch, training), vars);
  const loss = (await value.data())[0];
  value.dispose();
  const out = new Map<tf.Variable, tf.Tensor>();
  vars.forEach((v, i) => {
    const g = grads[i];
    if (g) out.set(v, g);
  });
  return { loss, grads: out };
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  tokens: number;
}

/** Per-step extras of optimizerStep. */
export interface StepOptions {
  /** 0-based global step handed to Trainable.afterStep (default: the optimizer's step count before this one). */
  step?: number;
  /** Per-variable learning-rate scale and weight decay (LoRA+), see AdamW.apply. */
  groups?: Map<tf.Variable, ParamGroup>;
}

/**
 * One optimizer step: averages gradients over the micro-batches (gradient accumulation), clips to
 * maxGradNorm, applies AdamW at `lr`, then runs the method's afterStep with those gradients (AdaLoRA's
 * update_and_allocate, which reads p * grad after the update). A non-finite loss or gradient leaves the weights
 * untouched and throws NAN_LOSS, so the last good adapter is kept.
 */
export async function optimizerStep(
  m: Trainable, opt: AdamW, micro: Batch[], lr: number, maxGradNorm: number, o: StepOptions = {},
): Promise<StepResult> {
  let sum: Map<tf.Variable, tf.Tensor> | null = null;
  let lossSum = 0;
  let tokens = 0;
  try {
    for (const b of micro) {
      const { loss, grads } = await lossAndGrads(m, b);
      lossSum += loss;
      tokens += b.tokens;
      if (!sum) sum = grads;
      else {
        for (const [v, g] of grads) {
          const prev = sum.get(v)!;
          sum.set(v, tf.add(prev, g));
          prev.dispose();
          g.dispose();
        }
      }
    }
    const loss = lossSum / micro.length;
    if (!Number.isFinite(loss)) {
      throw new EngineError('NAN_LOSS', `The loss became ${loss} at this step; the weights were not updated. Try a lower learning rate.`);
    }
    let grads = sum!;
    if (micro.length > 1) {
      const avg = new Map<tf.Variable, tf.Tensor>();
      for (const [v, g] of grads) (avg.set(v, tf.div(g, micro.length)), g.dispose());
      grads = avg;
    }
    const clipped = await clipGradNorm(grads, maxGradNorm);
    sum = clipped.grads;
    if (!Number.isFinite(clipped.norm)) {
      throw new EngineError('NAN_LOSS', `The gradient norm became ${clipped.norm}; the weights were not updated. Try a lower learning rate.`);
    }
    const step = o.step ?? opt.step;
    opt.apply(sum, lr, o.groups);
    if (m.afterStep) await m.afterStep({ step, grads: sum });
    return { loss, gradNorm: clipped.norm, tokens };
  } finally {
    if (sum) for (const g of sum.values()) g.dispose();
  }
}

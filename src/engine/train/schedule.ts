/** Learning-rate schedules with the formulas of transformers' get_scheduler (lr at optimizer step `step`, 0-based). */
export type SchedulerType = 'constant' | 'linear' | 'cosine';

/**
 * Optimizer steps of a run: max steps when set, else epochs x ceil(batches per epoch / accumulation), as the
 * training session counts them (transformers' Trainer rounds the same way).
 */
export function plannedSteps(a: { maxSteps?: number | null; epochs?: number | null; batchSize: number; gradientAccumulationSteps?: number }, trainExamples: number): number {
  if (a.maxSteps != null) return a.maxSteps;
  const perEpoch = Math.ceil(Math.ceil(trainExamples / Math.max(1, a.batchSize)) / Math.max(1, a.gradientAccumulationSteps ?? 1));
  return Math.max(1, Math.round(perEpoch * (a.epochs ?? 1)));
}

export interface ScheduleOptions {
  type: SchedulerType;
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
}

/** transformers: with warmup, step 0 runs at lr 0 and step `warmup` at the full rate. */
export function learningRateAt(step: number, o: ScheduleOptions): number {
  const { warmupSteps: w, totalSteps: total } = o;
  if (step < w) return (o.learningRate * step) / Math.max(1, w);
  switch (o.type) {
    case 'constant':
      return o.learningRate;
    case 'linear':
      return o.learningRate * Math.max(0, (total - step) / Math.max(1, total - w));
    case 'cosine': {
      const progress = (step - w) / Math.max(1, total - w);
      return o.learningRate * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}

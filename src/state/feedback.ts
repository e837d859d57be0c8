/**
 * Whether a run is visibly not learning, from its evaluations: the eval loss flat (or up) since the first
 * evaluation, or a classifier no better than always predicting the majority class. LiveView shows the hint.
 */
import type { ClassBaselines } from '../engine/train/baselines';
import type { EvalMetrics, TaskType } from '../worker/protocol';

export interface LearningHint {
  /** What the evaluations show, with the numbers. */
  reason: string;
  /** What to try, most likely first. */
  tips: string[];
}

/** Evaluations after step 0 needed before judging (fewer are too noisy to say a run did not learn). */
export const HINT_AFTER_EVALS = 3;
/** The eval loss must fall by at least this share of its first value to count as learning. */
const MIN_LOSS_DROP = 0.01;
/** Accuracy within this of the majority-class baseline is no better than it. */
const MAJORITY_MARGIN = 0.005;

const TIPS = [
  'Raise the learning rate (LoRA usually wants 1e-4 to 5e-3; a rate that is too small leaves the loss flat).',
  'Target more modules: a quick pick such as all-linear, or both attention and MLP.',
  'Train for more steps, or evaluate less often so the run gets further between evaluations.',
  'Or apply the Quick demo preset, which learns on the built-in data in a couple of minutes.',
];

/** A hint when the run did not learn after `after` evaluations past step 0, else null. */
export function learningHint(evals: EvalMetrics[], task: TaskType | null, baselines: ClassBaselines | null | undefined, after = HINT_AFTER_EVALS): LearningHint | null {
  const first = evals[0];
  const later = evals.filter((e) => e.step > (first?.step ?? 0));
  if (!first || later.length < after) return null;
  const last = later[later.length - 1];
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  if (task === 'SEQ_CLS' && baselines && Number.isFinite(last.accuracy) && last.accuracy <= baselines.majority + MAJORITY_MARGIN) {
    return {
      reason: `After ${later.length} evaluations the accuracy (${pct(last.accuracy)}) is no better than always predicting the majority class (${pct(baselines.majority)}).`,
      tips: TIPS,
    };
  }
  if (Number.isFinite(first.evalLoss) && Number.isFinite(last.evalLoss) && last.evalLoss > first.evalLoss * (1 - MIN_LOSS_DROP)) {
    const how = last.evalLoss > first.evalLoss ? 'went up' : 'stayed flat';
    return {
      reason: `After ${later.length} evaluations the eval loss ${how} (${first.evalLoss.toFixed(3)} at step ${first.step}, ${last.evalLoss.toFixed(3)} at step ${last.step}).`,
      tips: TIPS,
    };
  }
  return null;
}

/** What the studio is set to, or what a run was started with. */
export interface RunSetup {
  task: string;
  method: string;
  model: string;
}

/**
 * "From the previous run (…)" when the task, method or model changed since the run on show started, else null:
 * its charts and scores no longer describe what Start would train.
 */
export function staleNote(from: RunSetup | null | undefined, now: RunSetup, what: StaleSubject = STALE_RESULTS): string | null {
  if (!from) return null;
  const changed = (['task', 'method', 'model'] as const).filter((k) => from[k] !== now[k]);
  if (!changed.length) return null;
  return `${what.subject} from the previous run (${from.task} · ${from.method} · ${from.model}); the ${changed.join(' and ')} changed since. ${what.next}`;
}

/** What a stale note is about, and what to do for the current settings. */
export interface StaleSubject {
  subject: string;
  next: string;
}

/** The Live panel's charts and scores. */
export const STALE_RESULTS: StaleSubject = { subject: 'These results are', next: 'Start training to see results for the current settings.' };
/** The adapter the Export panel offers. */
export const STALE_ADAPTER: StaleSubject = {
  subject: 'This adapter is',
  next: 'It loads on the model it was trained on; start training for an adapter of the current settings.',
};
/** The adapter Push to the Hub uploads. */
export const STALE_PUSH: StaleSubject = {
  subject: 'The adapter this pushes is',
  next: 'Its model card names the model it was trained on; start training to push one of the current settings.',
};
/** The adapter the playground runs, and the outputs shown there. */
export const STALE_PLAYGROUND: StaleSubject = {
  subject: 'The adapter tried here, and its outputs below, are',
  next: 'Start training to try an adapter of the current settings.',
};

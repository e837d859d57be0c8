/** Time left in a run: the training steps at the measured pace plus the evaluations still to come at their measured length. */

export interface EtaInput {
  step: number;
  totalSteps: number;
  /** Time spent so far, evaluations included. */
  elapsedMs: number;
  /** How long each evaluation so far took (step 0 included). */
  evalMs: number[];
  /** eval_steps (0: only the one at the end). */
  evalEvery: number;
  /** Whether the run has a validation split (else nothing is evaluated). */
  hasValidation: boolean;
}

/**
 * ms per training step (evaluation time taken out) and the ETA: steps left at that pace, plus the evaluations
 * left (every evalEvery steps before the last, then one at the end) at the mean measured evaluation time.
 */
export function estimateRemaining(o: EtaInput): { msPerStep: number; etaMs: number; evalsLeft: number } {
  const evalTotal = o.evalMs.reduce((a, b) => a + b, 0);
  const msPerStep = o.step > 0 ? Math.max(0, o.elapsedMs - evalTotal) / o.step : 0;
  const left = Math.max(0, o.totalSteps - o.step);
  let evalsLeft = 0;
  if (o.hasValidation && left > 0) {
    // Evaluations at multiples of evalEvery after this step and before the last one, then the final evaluation.
    if (o.evalEvery > 0) evalsLeft += Math.floor((o.totalSteps - 1) / o.evalEvery) - Math.floor(o.step / o.evalEvery);
    evalsLeft += 1;
  }
  const meanEval = o.evalMs.length ? evalTotal / o.evalMs.length : 0;
  return { msPerStep, etaMs: msPerStep * left + evalsLeft * meanEval, evalsLeft };
}

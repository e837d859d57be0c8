/**
 * Generation benchmark on the current tfjs backend: times the KV-cache prefill of a prompt and each one-token
 * decode step of a model the caller built (this file builds nothing). Each step includes what generation pays
 * per token: the step itself and reading the logits back with `await data()`; tokens are picked by argmax.
 */
import type { Model } from './models/types';
import type { PeftModel } from './peft/model';
import { argmax } from './train/generate';
import { setPackPolicy } from './wasm-matmul';

export interface GenerationTiming {
  /** Prompt prefill, logits read back included. */
  prefill_ms: number;
  /** Mean over the decode steps. */
  ms_per_token: number;
  /** Decode steps timed. */
  tokens: number;
  /** Each step, in order. */
  step_ms: number[];
}

/** Times prefill of a `promptLen`-token prompt and `newTokens` cached decode steps (ms, see GenerationTiming). */
export async function benchGeneration(target: Model | PeftModel, promptLen: number, newTokens: number): Promise<GenerationTiming> {
  const peft = 'base' in target ? target : null;
  const model = peft ? peft.base : (target as Model);
  if (!model.startDecoding) throw new Error(`${model.className} has no key/value cache to benchmark`);
  const hooks = peft?.enabled ? peft.hooks(false) : {};
  // A fixed, spread-out prompt: the numbers depend on shapes, not on which tokens.
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
  const policy = setPackPolicy('marked'); // as generate() runs: only the decoding's own weight copies stay packed
  const t0 = performance.now();
  const dec = model.startDecoding(prompt, hooks);
  try {
    let logits = (await dec.logits.data()) as Float32Array;
    const prefill = performance.now() - t0;
    const steps: number[] = [];
    for (let n = 0; n < newTokens && dec.length < dec.maxLength; n++) {
      const t = performance.now();
      dec.next(argmax(logits));
      logits = (await dec.logits.data()) as Float32Array;
      steps.push(performance.now() - t);
    }
    const mean = steps.length ? steps.reduce((a, b) => a + b, 0) / steps.length : 0;
    return { prefill_ms: prefill, ms_per_token: mean, tokens: steps.length, step_ms: steps };
  } finally {
    dec.dispose();
    setPackPolicy(policy);
  }
}

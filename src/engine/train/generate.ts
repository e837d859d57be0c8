/** Text generation and classification with a (PEFT) model, for the playground and the CLI. */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { PeftModel } from '../peft/model';
import { PromptTuningModel } from '../peft/prompt-tuning/model';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  seed?: number;
}

interface Tok {
  encode(text: string): number[];
  decode(ids: number[]): string;
  eosTokenId?: number | null;
}

/**
 * Sampling without a KV cache: each new token reruns the forward over the window that fits the model's
 * positions. Small models make that cheap enough, and it keeps the model code a single pure forward.
 */
export async function generate(peft: PeftModel, tok: Tok, prompt: string, o: GenerateOptions = {}): Promise<string> {
  const maxNew = o.maxNewTokens ?? 40;
  const rng = new Rng(o.seed ?? 0);
  const virtual = peft.enabled && peft instanceof PromptTuningModel ? peft.config.numVirtualTokens : 0;
  const window = peft.base.config.maxPositions - virtual;
  const ids = tok.encode(prompt);
  if (ids.length === 0 && tok.eosTokenId != null) ids.push(tok.eosTokenId);
  const start = ids.length;
  for (let n = 0; n < maxNew; n++) {
    const ctx = ids.slice(-window);
    const last = tf.tidy(() => {
      const out = peft.forward({ inputIds: tf.tensor2d([ctx], [1, ctx.length], 'int32') });
      const S = out.shape[1]!;
      return out.slice([0, S - 1, 0], [1, 1, -1]).reshape([-1]);
    });
    const logits = (await last.data()) as Float32Array;
    last.dispose();
    const next = pick(logits, o.temperature ?? 0.8, o.topK ?? 40, rng);
    if (next === tok.eosTokenId) break;
    ids.push(next);
  }
  return tok.decode(ids.slice(start));
}

function pick(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature <= 0) return best;
  const idx = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, Math.max(1, topK));
  const ps = idx.map((i) => Math.exp((logits[i] - logits[best]) / temperature));
  const total = ps.reduce((a, b) => a + b, 0);
  let r = rng.next() * total;
  for (let k = 0; k < idx.length; k++) {
    r -= ps[k];
    if (r <= 0) return idx[k];
  }
  return idx[idx.length - 1];
}

/** Class probabilities for one tokenized text. */
export async function classify(peft: PeftModel, ids: number[]): Promise<{ label: number; probs: number[] }> {
  const p = tf.tidy(() => tf.softmax(peft.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') })));
  const probs = Array.from(await p.data());
  p.dispose();
  let label = 0;
  probs.forEach((p, i) => (p > probs[label] ? (label = i) : 0));
  return { label, probs };
}

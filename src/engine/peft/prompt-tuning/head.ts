/**
 * The SEQ_CLS head every prompt method (prompt tuning, P-tuning, prefix tuning) trains beside its prompt, and the
 * TOKEN_CLS head prefix tuning trains, as PEFT >= 0.16's PeftModelForSequenceClassification / ForTokenClassification do: a trainable copy of `classifier` / `score`
 * (ModulesToSaveWrapper) that replaces the base head in the forward. PEFT 0.15.2 left the head frozen and saved
 * no head, and PEFT 0.20 refuses such files (KeyError 'base_model.classifier.weight'), so the copy is written
 * as `base_model.<param>` beside `prompt_embeddings`: 0.20 loads it into its wrapper, 0.15.2 into the plain head.
 * Files without those keys (0.15.2's own) still load; the copy then starts from the base head.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import type { LoadedTensor } from '../../io/safetensors';
import type { Model } from '../../models/types';
import { uid } from '../lora/layer';
import { loadStrict } from '../model';
import { paramsUnder } from '../params';
import { promptHeadModules } from '../prompt-learning';
import { ownedVariable } from '../../variable';

/** PEFT's file-key prefix for prompt methods: their base_model is the transformers model itself. */
export const PROMPT_HEAD_PREFIX = 'base_model.';

export class PromptHead {
  /** Full parameter name (e.g. `classifier.weight`) -> its trainable copy. */
  readonly copies = new Map<string, tf.Variable>();
  private readonly base: Model;

  constructor(base: Model) {
    this.base = base;
    for (const mod of promptHeadModules(base.modules, base.task)) {
      for (const name of paramsUnder(base.modules, mod)) {
        const src = base.params.get(name);
        if (src) this.copies.set(name, ownedVariable(src.clone(), true, `prompt_head_${uid()}`));
      }
    }
  }

  /** The copies as ForwardHooks.overrides (undefined without a head). */
  get overrides(): Map<string, tf.Tensor> | undefined {
    return this.copies.size ? (this.copies as Map<string, tf.Tensor>) : undefined;
  }

  variables(): tf.Variable[] {
    return [...this.copies.values()];
  }

  /** The copies under their adapter file keys (`base_model.classifier.weight`, ...). */
  keyed(): Map<string, tf.Variable> {
    return new Map([...this.copies].map(([name, v]) => [`${PROMPT_HEAD_PREFIX}${name}`, v]));
  }

  /**
   * Loads the head keys of an adapter file, all of them or none (then the copy is reset to the base head, as
   * PEFT 0.15.2 would run it), and returns the other tensors for the prompt.
   */
  load(tensors: Map<string, LoadedTensor>, source: string): Map<string, LoadedTensor> {
    const keyed = this.keyed();
    const head = new Map([...tensors].filter(([k]) => keyed.has(k)));
    const rest = new Map([...tensors].filter(([k]) => !keyed.has(k)));
    if (head.size === 0) {
      for (const [name, v] of this.copies) v.assign(this.base.params.get(name)!);
    } else if (head.size < keyed.size) {
      const missing = [...keyed.keys()].filter((k) => !head.has(k));
      throw new EngineError('ADAPTER_MISMATCH', `${source} holds part of the classification head: missing ${missing.join(', ')}.`);
    } else {
      loadStrict(keyed, head, source);
    }
    return rest;
  }

  dispose(): void {
    for (const v of this.copies.values()) v.dispose();
    this.copies.clear();
  }
}

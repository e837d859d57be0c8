/**
 * Prompt tuning as PEFT 0.15 runs it: num_virtual_tokens trainable embeddings [P, C] are prepended to the
 * token embeddings, the attention mask gets P ones in front and CLM labels P times -100. Position ids are
 * not shifted (virtual tokens take positions 0..P-1). The base model stays frozen; a SEQ_CLS head trains as a
 * copy beside the prompt, as in PEFT >= 0.16 (head.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model } from '../../models/types';
import { Rng } from '../../random';
import { IGNORE_INDEX } from '../../train/loss';
import { uid } from '../lora/layer';
import { ownedVariable } from '../../variable';
import { forwardWith, loadStrict, type PeftModel } from '../model';
import { promptSubmodules } from '../prompt-learning';
import type { PromptTuningConfig } from './config';
import { PromptHead } from './head';

/** PEFT's file key for the prompt table. */
export const PROMPT_KEY = 'prompt_embeddings';

export class PromptTuningModel implements PeftModel {
  readonly peftType = 'PROMPT_TUNING' as const;
  readonly base: Model;
  readonly config: PromptTuningConfig;
  readonly embeddings: tf.Variable; // [P, C]
  /** The SEQ_CLS head copy (empty for CAUSAL_LM). */
  readonly head: PromptHead;
  enabled = true;

  get virtualTokens(): number {
    return this.config.numVirtualTokens;
  }

  adapterExtras() {
    const c = this.base.config;
    return { task: this.base.task, tokenDim: c.hiddenSize, numLayers: c.numLayers, numAttentionHeads: c.numHeads };
  }

  /** `encode` is needed for the TEXT init (PEFT tokenizes prompt_tuning_init_text). */
  constructor(base: Model, config: PromptTuningConfig, seed = 0, encode?: (text: string) => number[]) {
    this.base = base;
    this.config = config;
    // PEFT allocates num_virtual_tokens * num_transformer_submodules rows (2 for SEQ_2_SEQ_LM).
    const P = config.numVirtualTokens * this.submodules;
    const C = base.config.hiddenSize;
    const rng = new Rng(seed);
    let init: tf.Tensor;
    if (config.promptTuningInit === 'RANDOM') {
      // nn.Embedding's default init, N(0, 1).
      init = tf.tensor2d(rng.fillNormal(P * C, 1), [P, C]);
    } else {
      const ids = config.promptTuningInit === 'TEXT' ? textIds(config, P, encode) : sampleVocab(P, base.config.vocabSize, rng);
      init = tf.tidy(() => tf.gather(wordEmbeddings(base), tf.tensor1d(ids, 'int32')));
    }
    this.embeddings = ownedVariable(init, true, `prompt_embeddings_${uid()}`);
    this.head = new PromptHead(base);
  }

  /** Prompt tables PEFT allocates: one per transformer stack (encoder and decoder for SEQ_2_SEQ_LM). */
  get submodules(): number {
    return promptSubmodules(this.config, this.base.task);
  }

  /**
   * The virtual tokens prepended to the input. With two submodules PeftModelForSeq2SeqLM.forward prepends only
   * the first num_virtual_tokens rows, to the encoder input: the decoder's rows are allocated, saved and never
   * read (their gradient is 0).
   */
  hooks(_training: boolean): ForwardHooks {
    const P = this.config.numVirtualTokens;
    const prefix = this.submodules === 1 ? this.embeddings : tf.slice(this.embeddings, [0, 0], [P, -1]);
    return { prefixEmbeds: prefix, overrides: this.head.overrides };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  /** CLM labels get -100 for each virtual token (only while the prompt is on); SEQ_CLS labels are unchanged. */
  alignLabels(labels: tf.Tensor): tf.Tensor {
    if (this.base.task !== 'CAUSAL_LM' || !this.enabled) return labels;
    const [B] = labels.shape;
    return tf.concat([tf.fill([B, this.config.numVirtualTokens], IGNORE_INDEX, 'int32'), labels.toInt()], 1);
  }

  trainableVariables(): tf.Variable[] {
    return [this.embeddings, ...this.head.variables()];
  }

  /** `prompt_embeddings`, plus the SEQ_CLS head under `base_model.<param>` (see head.ts). */
  stateDict(): Map<string, tf.Tensor> {
    return new Map<string, tf.Tensor>([[PROMPT_KEY, this.embeddings], ...this.head.keyed()]);
  }

  /** Accepts files with the head keys (PEFT >= 0.16, PEFT Studio) and without them (PEFT 0.15.2). */
  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    loadStrict(new Map([[PROMPT_KEY, this.embeddings]]), this.head.load(tensors, source), source);
  }

  dispose(): void {
    this.embeddings.dispose();
    this.head.dispose();
  }
}

function wordEmbeddings(base: Model): tf.Tensor {
  const name = base.modules.find((m) => m.type === 'Embedding')?.name;
  const t = name ? base.params.get(`${name}.weight`) : undefined;
  if (!t) throw new EngineError('BAD_PEFT_CONFIG', 'The model has no word embedding to initialise the prompt from.');
  return t;
}

/** PEFT's SAMPLE_VOCAB: random token ids in [0, vocab). */
function sampleVocab(P: number, vocab: number, rng: Rng): number[] {
  return Array.from({ length: P }, () => rng.int(vocab));
}

/** PEFT's TEXT init: the text's token ids, truncated or repeated to fill P positions. */
function textIds(config: PromptTuningConfig, P: number, encode?: (text: string) => number[]): number[] {
  if (!encode) throw new EngineError('BAD_PEFT_CONFIG', 'prompt_tuning_init TEXT needs the model tokenizer, and this model has none.');
  const ids = encode(config.promptTuningInitText ?? '');
  if (ids.length === 0) throw new EngineError('BAD_PEFT_CONFIG', 'prompt_tuning_init_text gives no tokens.');
  const out: number[] = [];
  while (out.length < P) out.push(...ids);
  return out.slice(0, P);
}

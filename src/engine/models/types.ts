import type * as tf from '@tensorflow/tfjs';
import type { ArchitectureSpec } from './spec';

/** PEFT task types the engine supports. */
export type TaskType = 'CAUSAL_LM' | 'SEQ_CLS' | 'TOKEN_CLS' | 'SEQ_2_SEQ_LM';
/** Every TaskType, in the order a config's `architectures` class names are matched against an architecture's. */
export const TASK_TYPES: readonly TaskType[] = ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'];

/** What a module is part of, for the studio's quick picks ("attention only", "MLP only"). */
export type ModuleRole = 'attention' | 'mlp' | 'head';

/**
 * PEFT 0.15.2's defaults for one architecture (TRANSFORMERS_MODELS_TO_{LORA,ADALORA,IA3}_TARGET_MODULES_MAPPING and
 * the IA3 feedforward mapping); null where PEFT's table has no entry, so PEFT asks for them.
 */
export interface PeftDefaults {
  lora: string[] | null;
  /** AdaLoRA's own table (not LoRA's: OPT and RoBERTa differ, Mistral has none), saved in its order. */
  adalora: string[] | null;
  ia3: string[] | null;
  ia3Feedforward: string[] | null;
}

/** One row of PyTorch's `model.named_modules()`: name, class name and direct parameters (recurse=False). */
export interface ModuleInfo {
  name: string;
  type: string;
  params: Record<string, number[]>;
}

/** Parameters keyed by their full Hugging Face state_dict name, e.g. `transformer.h.0.attn.c_attn.weight`. */
export type ParamMap = Map<string, tf.Tensor>;

/** The Linear / Conv1D module a `linear` hook wraps. */
export interface LinearModule {
  /** nn.Linear: [out, in]; transformers' Conv1D: [in, out]. */
  weight: tf.Tensor;
  bias: tf.Tensor | null;
  /** true for Conv1D (weight [in, out], y = x W + b), false for nn.Linear (y = x W^T + b). */
  conv1d: boolean;
}

/**
 * How a PEFT method reaches into a forward pass without the model knowing about PEFT.
 * - `linear` wraps every Linear / Conv1D call (LoRA adds its branch here);
 * - `prefixEmbeds` are virtual-token embeddings [P, C] prepended to the token embeddings (prompt tuning, P-tuning);
 * - `pastKeyValues` are per-layer key/value prefixes every attention reads before its own keys (prefix tuning);
 * - `overrides` replace parameters by full name (modules_to_save head copies, trainable biases).
 */
export interface ForwardHooks {
  /**
   * `seed` gives the next dropout seed (a checkpointed block replays the same ones); `module` is the wrapped
   * module's weight and bias (overrides applied), for methods that read the weight itself (DoRA's norm).
   */
  linear?: (name: string, x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor, seed: () => number, module: LinearModule) => tf.Tensor;
  /** Whether `linear` changes this module (the fused LM-head loss only applies to an untouched head). */
  wraps?: (name: string) => boolean;
  /** The hook's trainable variables used inside modules whose names start with `prefix` (for checkpointing). */
  variablesUnder?: (prefix: string) => tf.Variable[];
  prefixEmbeds?: tf.Tensor;
  pastKeyValues?: PrefixKeyValues;
  overrides?: Map<string, tf.Tensor>;
}

/**
 * Prefix tuning's keys and values, as PEFT passes them in `past_key_values`: `length` positions in front of every
 * layer's own keys (which are at positions length.. of the sequence). `layer(i)` returns layer i's prefix
 * [1, H_kv, length, head_dim] each, keys used as they are (never rotated). A block calls it inside its own
 * scope, also when a checkpointed block is recomputed, so the prefix's gradient reaches the method's variables
 * (which `variablesUnder` lists for every block).
 */
export interface PrefixKeyValues {
  length: number;
  layer(i: number): { k: tf.Tensor; v: tf.Tensor };
}

/** Inputs to a forward pass. */
export interface ForwardInput {
  /** int32 [B, T] */
  inputIds: tf.Tensor;
  /** [B, T], 1 for real tokens and 0 for padding; all ones when absent (as in transformers). */
  attentionMask?: tf.Tensor;
  /** Dropout on (base-model dropouts with the config's probabilities). */
  training?: boolean;
  /** Gradient checkpointing: keep only each block's input and recompute the block in the backward pass. */
  checkpoint?: boolean;
  /** Seed of this forward's dropout masks (each dropout site draws the next one). */
  seed?: number;
  /** SEQ_2_SEQ_LM: int32 [B, T'] decoder inputs; absent: derived from `labels` (shifted right). */
  decoderInputIds?: tf.Tensor;
  /** SEQ_2_SEQ_LM: int32 [B, T'] targets (-100 = not scored), from which the decoder inputs are derived. */
  labels?: tf.Tensor;
}

/** Loss and argmax predictions with the labels they are scored against, for evaluation. */
export interface EvalOutput {
  /** Mean loss over scored targets. */
  loss: tf.Scalar;
  /** CAUSAL_LM: next-token predictions [B * (S - 1)]; SEQ_CLS: classes [B]; TOKEN_CLS: classes [B * S]; SEQ_2_SEQ_LM: [B * T']. */
  preds: tf.Tensor;
  /** The targets aligned with preds (CAUSAL_LM, TOKEN_CLS: -100 where not scored). */
  labels: tf.Tensor;
}

/** Which modules of an architecture PEFT treats specially. */
export interface HeadInfo {
  /** Output embedding module name (CAUSAL_LM), never targeted by "all-linear". */
  outputEmbedding?: string;
  /** SEQ_CLS head module name (`score` / `classifier`). */
  classifier?: string;
  /** The Linear whose rows are the labels, when the head is a module of several (RoBERTa: `classifier.out_proj`). */
  labelsLinear?: string;
  /** Other modules the task class adds beside the head, made fresh with it when a checkpoint lacks them (DistilBERT's pre_classifier). */
  headExtras?: string[];
}

/** A built model: parameters plus a pure forward. */
export interface Model {
  arch: string;
  /** The architecture file that built it (its facts: PEFT defaults, pooling, module roles). */
  spec: ArchitectureSpec<any>;
  /** transformers class name, e.g. `GPT2LMHeadModel`. */
  className: string;
  task: TaskType;
  /** Normalised config of the architecture (see each models/<arch>.ts). */
  config: ArchConfig;
  /** The raw config.json. */
  rawConfig: Record<string, unknown>;
  params: ParamMap;
  /** Full parameter names that are tied to another (e.g. `lm_head.weight` -> `transformer.wte.weight`). */
  tied: Record<string, string>;
  heads: HeadInfo;
  /** named_modules() in PyTorch order. */
  modules: ModuleInfo[];
  /** Logits: CAUSAL_LM [B, P+T, V]; SEQ_CLS [B, num_labels]; TOKEN_CLS [B, T, num_labels]; SEQ_2_SEQ_LM [B, T', V] (decoder positions). */
  forward(input: ForwardInput, hooks?: ForwardHooks): tf.Tensor;
  /**
   * The training loss transformers computes from `labels` (aligned with the forward's positions): CAUSAL_LM
   * next-token cross-entropy over labels != -100 (fused with the LM head, never building all logits),
   * SEQ_CLS cross-entropy (MSE for one label).
   */
  loss(input: ForwardInput, labels: tf.Tensor, hooks?: ForwardHooks): tf.Scalar;
  /** The same loss with argmax predictions, for evaluation. */
  evaluate(input: ForwardInput, labels: tf.Tensor, hooks?: ForwardHooks): EvalOutput;
  /**
   * Prefills a key/value cache with one prompt and returns a Decoding positioned after it (CAUSAL_LM models
   * of decoder architectures; absent otherwise). `hooks` apply to every step as they do in forward().
   */
  startDecoding?(promptIds: number[], hooks?: ForwardHooks, opts?: DecodeOptions): Decoding;
  /** Most positions (virtual tokens included) a decoding may hold; set exactly when startDecoding is. */
  maxDecodeLength?: number;
  /**
   * SEQ_2_SEQ_LM: encodes `sourceIds` once and returns a Decoding of the decoder, positioned after
   * decoder_start_token_id (its logits predict the first target token); next() appends a target token.
   */
  startSeq2SeqDecoding?(sourceIds: number[], hooks?: ForwardHooks): Decoding;
  dispose(): void;
}

/**
 * One sequence being decoded with a key/value cache: each step runs the new token only and the LM head on
 * the last position only. The logits equal the forward's at that position.
 */
export interface Decoding {
  /** Next-token logits [V] after the sequence so far; disposed by next() and dispose(), so read it first. */
  readonly logits: tf.Tensor1D;
  /** Positions in the cache: virtual tokens (prompt tuning) + prompt + appended tokens. */
  readonly length: number;
  /** Most positions the cache may hold (see DecoderSpec.maxLength); next() needs length < maxLength. */
  readonly maxLength: number;
  /** Appends one token: extends the cache and computes its logits. */
  next(tokenId: number): void;
  /** Frees the cache, the logits and the weight copies made for this decoding. Idempotent. */
  dispose(): void;
}

export interface DecodeOptions {
  /**
   * wasm only: bytes of transposed Linear-weight copies (and their packed twins) a decoding may keep, which
   * make each one-token product several times faster (layers.ts LinearProducts). Default: 2.5 GiB minus
   * the model's own weights.
   */
  transposeBudgetBytes?: number;
}

/** Fields every normalised architecture config has. */
export interface ArchConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  numLabels: number;
  padTokenId: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  tieWordEmbeddings: boolean;
}

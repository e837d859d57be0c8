import type * as tf from '@tensorflow/tfjs';

/** PEFT task types the engine supports. */
export type TaskType = 'CAUSAL_LM' | 'SEQ_CLS';

/** One row of PyTorch's `model.named_modules()`: name, class name and direct parameters (recurse=False). */
export interface ModuleInfo {
  name: string;
  type: string;
  params: Record<string, number[]>;
}

/** Parameters keyed by their full Hugging Face state_dict name, e.g. `transformer.h.0.attn.c_attn.weight`. */
export type ParamMap = Map<string, tf.Tensor>;

/**
 * How a PEFT method reaches into a forward pass without the model knowing about PEFT.
 * - `linear` wraps every Linear / Conv1D call (LoRA adds its branch here);
 * - `prefixEmbeds` are virtual-token embeddings [P, C] prepended to the token embeddings (prompt tuning);
 * - `overrides` replace parameters by full name (modules_to_save head copies, trainable biases).
 */
export interface ForwardHooks {
  linear?: (name: string, x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor) => tf.Tensor;
  prefixEmbeds?: tf.Tensor;
  overrides?: Map<string, tf.Tensor>;
}

/** Inputs to a forward pass. */
export interface ForwardInput {
  /** int32 [B, T] */
  inputIds: tf.Tensor;
  /** [B, T], 1 for real tokens and 0 for padding; all ones when absent (as in transformers). */
  attentionMask?: tf.Tensor;
  /** Dropout on (base-model dropouts with the config's probabilities). */
  training?: boolean;
}

/** Which modules of an architecture PEFT treats specially. */
export interface HeadInfo {
  /** Output embedding module name (CAUSAL_LM), never targeted by "all-linear". */
  outputEmbedding?: string;
  /** SEQ_CLS head module name (`score` / `classifier`). */
  classifier?: string;
}

/** A built model: parameters plus a pure forward. */
export interface Model {
  arch: string;
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
  /** Logits: CAUSAL_LM [B, P+T, V]; SEQ_CLS [B, num_labels]. */
  forward(input: ForwardInput, hooks?: ForwardHooks): tf.Tensor;
  dispose(): void;
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

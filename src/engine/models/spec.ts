/**
 * The contract each architecture file fulfils. Architectures normalise their own config.json next to their
 * forward (no central switch), describe their named_modules() tree from the config alone, and say how to
 * initialise a parameter that a checkpoint lacks (a fresh SEQ_CLS head, or everything for pretraining).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Ctx, LayerCache } from './layers';
import type { ArchConfig, Decoding, ForwardHooks, ForwardInput, HeadInfo, Model, ModuleInfo, ModuleRole, PeftDefaults, TaskType } from './types';
import type { Rng } from '../random';
import { describeValue } from '../quote';

export interface ArchitectureSpec<C extends ArchConfig = ArchConfig> {
  /** Short id used in docs and errors, e.g. "gpt2". */
  id: string;
  /** config.json `model_type` values this file implements. */
  modelTypes: string[];
  /** transformers class name for a task, e.g. GPT2LMHeadModel; undefined when the task is not supported. */
  className(c: C, task: TaskType): string | undefined;
  /** PEFT 0.15.2's default target_modules (LoRA / AdaLoRA, IA3) and IA3 feedforward_modules for this config. */
  peftDefaults(c: C): PeftDefaults;
  /** Full-name patterns of the modules in each role, for the studio's quick picks (a module in none has no role). */
  roles: Partial<Record<ModuleRole, RegExp>>;
  /** Width of the MLP's inner layer (the memory estimate's F). */
  ffnSize(c: C): number;
  /** How the memory estimate counts a block: 'plain' two-matrix MLP, or 'gated' (SwiGLU: gate, up, down). */
  mlpKind: 'plain' | 'gated' | ((c: C) => 'plain' | 'gated');
  /**
   * Blocks the backward pass keeps activations for, in units of one self-attention block (the memory estimate's
   * L; default config numLayers, all checkpointed with gradient checkpointing), and how many of them keep their
   * activations even with checkpointing on. An encoder-decoder counts both stacks.
   */
  memoryBlocks?(c: C): { blocks: number; uncheckpointed: number };
  /**
   * What *ForSequenceClassification pools: the first position ([CLS], encoders) or each row's last non-pad token
   * (decoders), which needs pad_token_id to find it in a batch of more than one row.
   */
  seqClsPooling: 'first' | 'last';
  parseConfig(raw: Record<string, unknown>): C;
  /** named_modules() rows, in PyTorch order, with direct parameter shapes. */
  modules(c: C, task: TaskType): ModuleInfo[];
  heads(c: C, task: TaskType): HeadInfo;
  /** Parameter name -> the parameter it shares storage with (tied embeddings). */
  tied(c: C, task: TaskType): Record<string, string>;
  /** Prefix of the base model inside the task model ("transformer.", "model.", "bert."): checkpoints saved
   *  from the bare base model omit it. */
  basePrefix: string;
  /** Values for a parameter that is not in the checkpoint, as transformers' _init_weights would draw them. */
  initParam(name: string, shape: number[], c: C, rng: Rng): Float32Array;
  /** Final hidden states [B, P+T, C] (after the last norm, before any head). */
  hidden(c: C, task: TaskType, ctx: Ctx, input: ForwardInput): tf.Tensor;
  /** The task head on hidden(): CAUSAL_LM logits [B, P+T, V]; SEQ_CLS pooled logits [B, num_labels]. */
  head(c: C, task: TaskType, ctx: Ctx, x: tf.Tensor, input: ForwardInput): tf.Tensor;
  /** Incremental decoding with a key/value cache (decoder-only architectures); absent: no cache. */
  decoder?: DecoderSpec<C>;
  /**
   * Encoder-decoder decoding (SEQ_2_SEQ_LM): the encoder runs once on the source, then the decoder one token at a
   * time from decoder_start_token_id (whose logits the Decoding starts with), with cached keys / values.
   */
  seq2seq?: { start(model: Model, sourceIds: number[], hooks: ForwardHooks): Decoding };
}

/**
 * What a decoder architecture adds for a key/value cache. Model.startDecoding (index.ts) owns the cache and
 * runs the LM head on the last position; the architecture only computes hidden states step by step.
 */
export interface DecoderSpec<C extends ArchConfig = ArchConfig> {
  /** Most positions (virtual tokens included) one cache may hold with results equal to the full forward. */
  maxLength(c: C): number;
  /**
   * Final hidden states [B, S, C] of S new tokens at positions past..past+S-1, given `past` cached positions;
   * each layer reads `caches[i].past` and fills `caches[i].present`. With an empty cache (past = 0) the
   * prompt-tuning prefix is prepended, as in hidden(), so S counts the virtual tokens too.
   */
  step(c: C, ctx: Ctx, inputIds: tf.Tensor, caches: LayerCache[], past: number): tf.Tensor;
}

/** The role of a module by its full name (the first role whose pattern matches), or null. */
export function moduleRole(spec: Pick<ArchitectureSpec, 'roles'>, name: string): ModuleRole | null {
  for (const role of ['head', 'attention', 'mlp'] as const) if (spec.roles[role]?.test(name)) return role;
  return null;
}

/**
 * Reads a config field with a type check and a default, so each architecture's parseConfig stays short. A value
 * of the wrong JSON type is an error that says what was found: `hidden_act must be a string, got the number 3`.
 */
export function field<T>(raw: Record<string, unknown>, key: string, fallback: T, where = 'config.json'): T {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof fallback === 'number' && typeof v !== 'number') {
    throw new TypeError(`${where}: ${key} must be a number, got ${describeValue(v)}`);
  }
  if (typeof fallback === 'boolean' && typeof v !== 'boolean') {
    throw new TypeError(`${where}: ${key} must be true or false, got ${describeValue(v)}`);
  }
  if (typeof fallback === 'string' && typeof v !== 'string') {
    throw new TypeError(`${where}: ${key} must be a string, got ${describeValue(v)}`);
  }
  return v as T;
}

/** A required positive integer config field (the first of `keys` present; they are aliases). */
export function requiredInt(raw: Record<string, unknown>, ...keys: string[]): number {
  for (const k of keys) {
    const v = raw[k];
    if (v !== undefined && v !== null) {
      if (typeof v !== 'number') throw new TypeError(`config.json: ${k} must be a number, got ${describeValue(v)}`);
      if (!Number.isInteger(v) || v <= 0) throw new TypeError(`config.json: ${k} must be a positive integer, got ${describeValue(v)}`);
      return v;
    }
  }
  const also = keys.length > 1 ? ` (or ${keys.slice(1).join(', ')})` : '';
  throw new TypeError(`config.json: ${keys[0]}${also} is missing; it must be a positive integer`);
}

/**
 * num_labels as transformers derives it: explicit num_labels, else id2label's size, else 2. A num_labels that is
 * not a positive integer, or an id2label that is not an object, is an error rather than silently 2.
 */
export function numLabelsOf(raw: Record<string, unknown>): number {
  const n = raw.num_labels;
  if (n !== undefined && n !== null) {
    if (typeof n !== 'number') throw new TypeError(`config.json: num_labels must be a number, got ${describeValue(n)}`);
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`config.json: num_labels must be a positive integer, got ${describeValue(n)}`);
    return n;
  }
  const m = raw.id2label;
  if (m !== undefined && m !== null) {
    if (typeof m !== 'object' || Array.isArray(m)) {
      throw new TypeError(`config.json: id2label must be an object like {"0": "negative", "1": "positive"}, got ${describeValue(m)}`);
    }
    const k = Object.keys(m).length;
    if (k > 0) return k;
  }
  return 2;
}

/** A token id field (pad / bos / eos): an integer, a list whose first entry is one, or absent (null). */
export function optionalId(raw: Record<string, unknown>, key: string, what = 'a token id (an integer) or a list of them'): number | null {
  const v = raw[key];
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v.length ? v[0] : null;
  throw new TypeError(`config.json: ${key} must be ${what}, got ${describeValue(v)}`);
}

/** Small builder for named_modules() rows. */
export class TreeBuilder {
  readonly rows: ModuleInfo[] = [];
  add(name: string, type: string, params: Record<string, number[]> = {}): this {
    this.rows.push({ name, type, params });
    return this;
  }
  linear(name: string, inF: number, outF: number, bias = true): this {
    return this.add(name, 'Linear', bias ? { weight: [outF, inF], bias: [outF] } : { weight: [outF, inF] });
  }
  conv1d(name: string, inF: number, outF: number): this {
    return this.add(name, 'Conv1D', { weight: [inF, outF], bias: [outF] });
  }
  embedding(name: string, n: number, d: number): this {
    return this.add(name, 'Embedding', { weight: [n, d] });
  }
  layerNorm(name: string, d: number, type = 'LayerNorm'): this {
    return this.add(name, type, { weight: [d], bias: [d] });
  }
}

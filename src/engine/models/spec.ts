/**
 * The contract each architecture file fulfils. Architectures normalise their own config.json next to their
 * forward (no central switch), describe their named_modules() tree from the config alone, and say how to
 * initialise a parameter that a checkpoint lacks (a fresh SEQ_CLS head, or everything for pretraining).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Ctx, LayerCache } from './layers';
import type { ArchConfig, ForwardInput, HeadInfo, ModuleInfo, TaskType } from './types';
import type { Rng } from '../random';

export interface ArchitectureSpec<C extends ArchConfig = ArchConfig> {
  /** Short id used in docs and errors, e.g. "gpt2". */
  id: string;
  /** config.json `model_type` values this file implements. */
  modelTypes: string[];
  /** transformers class name for a task, e.g. GPT2LMHeadModel; undefined when the task is not supported. */
  className(c: C, task: TaskType): string | undefined;
  /** PEFT's default LoRA target_modules for this architecture. */
  defaultTargets: string[];
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

/** Reads a config field with a type check and a default, so each architecture's parseConfig stays short. */
export function field<T>(raw: Record<string, unknown>, key: string, fallback: T, where = 'config.json'): T {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof fallback === 'number' && typeof v !== 'number') {
    throw new TypeError(`${where}: "${key}" should be a number, got ${JSON.stringify(v)}`);
  }
  if (typeof fallback === 'boolean' && typeof v !== 'boolean') {
    throw new TypeError(`${where}: "${key}" should be true or false, got ${JSON.stringify(v)}`);
  }
  if (typeof fallback === 'string' && typeof v !== 'string') {
    throw new TypeError(`${where}: "${key}" should be a string, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** A required positive integer config field. */
export function requiredInt(raw: Record<string, unknown>, ...keys: string[]): number {
  for (const k of keys) {
    const v = raw[k];
    if (v !== undefined && v !== null) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
        throw new TypeError(`config.json: "${k}" should be a positive integer, got ${JSON.stringify(v)}`);
      }
      return v;
    }
  }
  throw new TypeError(`config.json: "${keys[0]}" is missing`);
}

/** num_labels as transformers derives it: explicit num_labels, else id2label's size, else 2. */
export function numLabelsOf(raw: Record<string, unknown>): number {
  if (typeof raw.num_labels === 'number') return raw.num_labels;
  if (raw.id2label && typeof raw.id2label === 'object') return Object.keys(raw.id2label).length;
  return 2;
}

export function optionalId(raw: Record<string, unknown>, key: string): number | null {
  const v = raw[key];
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return null;
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

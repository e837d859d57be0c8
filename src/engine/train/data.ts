/**
 * From examples to padded batches. An example is text (CLM or SEQ_CLS), a prompt/response pair (CLM trained
 * on the response only), or pre-tokenized input_ids for models without a tokenizer, optionally with per-token
 * labels (a conversation encoded by chat-encode.ts, -100 where it is not trained on).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import { Rng, type RngState } from '../random';
import type { TaskType } from '../models/types';
import { IGNORE_INDEX } from './loss';
import { truncateKeepingResponse } from './chat-encode';

export interface Example {
  text?: string;
  prompt?: string;
  response?: string;
  inputIds?: number[];
  /** CLM labels for inputIds (same length; the id where trained on, -100 elsewhere). */
  labels?: number[];
  label?: number;
  /** SEQ_2_SEQ_LM: the target text (`text` is the source); pre-tokenized rows give inputIds + labels instead. */
  target?: string;
}

/** A tokenized example: ids, per-token CLM labels (-100 = not scored) or a class label. */
export interface Encoded {
  ids: number[];
  labels?: number[];
  label?: number;
}

export interface EncodeOptions {
  task: TaskType;
  maxLength: number;
  encode?: (text: string) => number[];
  /** Appended to CLM examples so the model learns where a text ends. */
  eosTokenId?: number | null;
  numLabels?: number;
  /** SEQ_2_SEQ_LM: most target tokens (default maxLength). */
  maxTargetLength?: number;
}

/** Tokenizes examples, truncating to maxLength; the error names the row that is wrong. */
export function encodeExamples(rows: Example[], o: EncodeOptions): Encoded[] {
  return rows.map((row, i) => {
    const where = `row ${i + 1}`;
    const enc = (s: string) => {
      if (!o.encode) throw new EngineError('BAD_DATA', `${where}: the data is text but this model has no tokenizer; give pre-tokenized input_ids.`);
      return o.encode(s);
    };
    if (o.task === 'SEQ_2_SEQ_LM') return encodeSeq2Seq(row, o, where, enc);
    let ids: number[];
    let labels: number[] | undefined;
    if (row.inputIds) {
      if (!row.inputIds.every((t) => Number.isInteger(t) && t >= 0)) throw new EngineError('BAD_DATA', `${where}: input_ids must be non-negative integers.`);
      ids = row.inputIds.slice();
      if (row.labels && o.task === 'CAUSAL_LM') {
        const l = row.labels;
        if (l.length !== ids.length || l.some((x, j) => x !== IGNORE_INDEX && x !== ids[j])) {
          throw new EngineError('BAD_DATA', `${where}: labels must have one entry per input id, each the id itself or ${IGNORE_INDEX}.`);
        }
        // Cut as the chat encoder does, so a shorter max length still keeps the response.
        const t = truncateKeepingResponse(ids, l.slice(), o.maxLength);
        ids = t.ids;
        labels = t.labels;
      } else if (o.task === 'TOKEN_CLS') {
        // Pre-tokenized token classification: a class index per id, -100 where not scored (special tokens, later pieces).
        const l = row.labels;
        const n = o.numLabels ?? Infinity;
        if (!l || l.length !== ids.length || l.some((x) => x !== IGNORE_INDEX && !(Number.isInteger(x) && x >= 0 && x < n))) {
          throw new EngineError('BAD_DATA', `${where}: token classification needs labels with one entry per input id, each a class index${Number.isFinite(n) ? ` in 0..${n - 1}` : ''} or ${IGNORE_INDEX}.`);
        }
        labels = l.slice();
      }
    } else if (row.prompt !== undefined && o.task === 'CAUSAL_LM') {
      const p = enc(row.prompt);
      const r = enc(row.response ?? '');
      if (o.eosTokenId != null) r.push(o.eosTokenId);
      ids = [...p, ...r];
      labels = [...p.map(() => IGNORE_INDEX), ...r];
    } else if (typeof row.text === 'string') {
      ids = enc(row.text);
      if (o.task === 'CAUSAL_LM' && o.eosTokenId != null) ids.push(o.eosTokenId);
    } else {
      throw new EngineError('BAD_DATA', `${where}: no text, prompt or input_ids.`);
    }
    ids = ids.slice(0, o.maxLength);
    if (ids.length === 0) throw new EngineError('BAD_DATA', `${where}: empty after tokenization.`);
    if (o.task === 'SEQ_CLS') {
      const label = row.label;
      if (label === undefined || !Number.isInteger(label) || label < 0 || (o.numLabels !== undefined && label >= o.numLabels)) {
        throw new EngineError('BAD_DATA', `${where}: label ${JSON.stringify(label)} is not a class index in 0..${(o.numLabels ?? 2) - 1}.`);
      }
      return { ids, label };
    }
    if (o.task === 'TOKEN_CLS' && !labels) {
      throw new EngineError('BAD_DATA', `${where}: token classification needs per-token labels: give {"input_ids": [...], "labels": [...]}.`);
    }
    return { ids, labels: labels ? labels.slice(0, o.maxLength) : ids.slice() };
  });
}

/**
 * A seq2seq example: source ids (the encoder input) and target ids (the labels the decoder is trained on). Text
 * is tokenized with the tokenizer's special tokens, as transformers' T5 tokenizer adds `</s>` to source and
 * target; a tokenizer that adds none gets the EOS appended. Truncation keeps that EOS last, as `truncation=True`
 * does. Pre-tokenized rows are used as given (cut to the lengths).
 */
function encodeSeq2Seq(row: Example, o: EncodeOptions, where: string, enc: (s: string) => number[]): Encoded {
  const maxTarget = o.maxTargetLength ?? o.maxLength;
  const eos = o.eosTokenId ?? null;
  const withEos = (ids: number[], max: number) => {
    const out = ids.slice();
    if (eos !== null && out[out.length - 1] !== eos) out.push(eos);
    if (out.length <= max) return out;
    return eos !== null ? [...out.slice(0, max - 1), eos] : out.slice(0, max);
  };
  let ids: number[];
  let labels: number[];
  if (row.inputIds) {
    if (!row.inputIds.every((t) => Number.isInteger(t) && t >= 0)) throw new EngineError('BAD_DATA', `${where}: input_ids must be non-negative integers.`);
    const l = row.labels;
    if (!l || l.length === 0 || l.some((x) => !(x === IGNORE_INDEX || (Number.isInteger(x) && x >= 0)))) {
      throw new EngineError('BAD_DATA', `${where}: seq2seq needs labels: the target token ids (non-negative integers, or ${IGNORE_INDEX} where not scored), e.g. {"input_ids": [...], "labels": [...]}.`);
    }
    ids = row.inputIds.slice(0, o.maxLength);
    labels = l.slice(0, maxTarget);
  } else if (typeof row.text === 'string' && typeof row.target === 'string') {
    ids = withEos(enc(row.text), o.maxLength);
    labels = withEos(enc(row.target), maxTarget);
  } else {
    throw new EngineError('BAD_DATA', `${where}: seq2seq needs a source and a target text, or pre-tokenized input_ids and labels.`);
  }
  if (ids.length === 0) throw new EngineError('BAD_DATA', `${where}: the source is empty after tokenization.`);
  if (!labels.some((x) => x !== IGNORE_INDEX)) throw new EngineError('BAD_DATA', `${where}: the target has no scored token.`);
  return { ids, labels };
}

export interface Batch {
  inputIds: tf.Tensor2D; // int32 [B, T]
  attentionMask: tf.Tensor2D; // int32 [B, T]
  labels: tf.Tensor; // CLM / TOKEN_CLS int32 [B, T] (-100 on padding); SEQ_CLS int32 [B]; SEQ_2_SEQ_LM int32 [B, T'] targets
  /** Real (non-pad) tokens, for tokens/s. */
  tokens: number;
}

export interface CollateOptions {
  /**
   * Pad the length up to a multiple of this (DataCollatorWithPadding's pad_to_multiple_of), never past
   * `maxLength`: fewer distinct shapes, so cached masks, kernels and WebGPU shaders are reused.
   */
  padToMultipleOf?: number;
  maxLength?: number;
}

/** Right-pads a list of examples into one batch. */
export function collate(items: Encoded[], task: TaskType, padId: number, o: CollateOptions = {}): Batch {
  const B = items.length;
  const longest = Math.max(...items.map((e) => e.ids.length));
  const m = o.padToMultipleOf ?? 1;
  const T = Math.max(longest, Math.min(Math.ceil(longest / m) * m, o.maxLength ?? Infinity));
  if (task === 'SEQ_2_SEQ_LM') return collateSeq2Seq(items, T, padId);
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const lab = task === 'SEQ_CLS' ? new Int32Array(B) : new Int32Array(B * T).fill(IGNORE_INDEX);
  let tokens = 0;
  items.forEach((e, b) => {
    e.ids.forEach((t, j) => {
      ids[b * T + j] = t;
      mask[b * T + j] = 1;
      if (task !== 'SEQ_CLS') lab[b * T + j] = e.labels![j];
    });
    if (task === 'SEQ_CLS') lab[b] = e.label!;
    tokens += e.ids.length;
  });
  return {
    inputIds: tf.tensor2d(ids, [B, T], 'int32'),
    attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
    labels: task === 'SEQ_CLS' ? tf.tensor1d(lab, 'int32') : tf.tensor2d(lab, [B, T], 'int32'),
    tokens,
  };
}

/** SEQ_2_SEQ_LM: sources right-padded to T, targets to the longest target with -100 (DataCollatorForSeq2Seq). */
function collateSeq2Seq(items: Encoded[], T: number, padId: number): Batch {
  const B = items.length;
  const L = Math.max(...items.map((e) => e.labels!.length));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const lab = new Int32Array(B * L).fill(IGNORE_INDEX);
  let tokens = 0;
  items.forEach((e, b) => {
    e.ids.forEach((t, j) => ((ids[b * T + j] = t), (mask[b * T + j] = 1)));
    e.labels!.forEach((t, j) => (lab[b * L + j] = t));
    tokens += e.ids.length + e.labels!.length;
  });
  return {
    inputIds: tf.tensor2d(ids, [B, T], 'int32'),
    attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
    labels: tf.tensor2d(lab, [B, L], 'int32'),
    tokens,
  };
}

export function disposeBatch(b: Batch): void {
  b.inputIds.dispose();
  b.attentionMask.dispose();
  b.labels.dispose();
}

/** Epoch-wise shuffled batch order, reproducible from the seed. */
/** BatchSampler.state: this epoch's order, the position in it, the epoch and the shuffling generator. */
export interface SamplerState {
  order: number[];
  pos: number;
  epoch: number;
  rng: RngState;
}

export class BatchSampler {
  private order: number[] = [];
  private pos = 0;
  epoch = 0;
  private readonly rng: Rng;
  constructor(readonly size: number, readonly batchSize: number, seed: number) {
    if (size === 0) throw new EngineError('BAD_DATA', 'The training set is empty.');
    this.rng = new Rng(seed);
    this.reshuffle();
  }
  private reshuffle() {
    this.order = this.rng.shuffle(Array.from({ length: this.size }, (_, i) => i));
    this.pos = 0;
  }
  /** Batches per epoch (the last one may be short, as a DataLoader with drop_last=False). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.size / this.batchSize);
  }
  /** Where the sampler is in its epochs (the data-order cursor a checkpoint keeps). */
  get state(): SamplerState {
    return { order: this.order.slice(), pos: this.pos, epoch: this.epoch, rng: this.rng.state };
  }
  set state(st: SamplerState) {
    if (st.order.length !== this.size || st.order.some((i) => !(Number.isInteger(i) && i >= 0 && i < this.size))) {
      throw new EngineError('BAD_CHECKPOINT', `The checkpoint's data order covers ${st.order.length} examples but the training set has ${this.size}; resume with the data the run started with.`);
    }
    this.order = st.order.slice();
    this.pos = st.pos;
    this.epoch = st.epoch;
    this.rng.state = st.rng;
  }
  next(): number[] {
    if (this.pos >= this.size) {
      this.epoch += 1;
      this.reshuffle();
    }
    const idx = this.order.slice(this.pos, this.pos + this.batchSize);
    this.pos += this.batchSize;
    return idx;
  }
}

/** Evaluation over a validation set: loss plus accuracy (and F1 for classification). */
import * as tf from '@tensorflow/tfjs';
import { peftEvaluate, type PeftModel } from '../peft/model';
import { collate, disposeBatch, type CollateOptions, type Encoded } from './data';
import { IGNORE_INDEX } from './loss';
import { accuracy, addPredictions, emptyCounts, f1Score, perClass, type ClassScores } from './metrics';
import { seqeval, type EntityScores } from './seqeval';
import { generateSeq2Seq, generationHooks, releaseGenerationHooks } from './seq2seq-generate';
import { generationScores } from './seq2seq-metrics';

export interface EvalMetrics {
  evalLoss: number;
  /** SEQ_CLS: share of rows classified right; CLM: share of next tokens predicted right (argmax); TOKEN_CLS: of labelled tokens. */
  accuracy: number;
  /** SEQ_CLS: F1 of class 1 (binary) or macro F1; TOKEN_CLS: seqeval's micro entity F1 (default mode). */
  f1?: number;
  /** TOKEN_CLS: seqeval's micro entity precision and recall. */
  precision?: number;
  recall?: number;
  /** TOKEN_CLS: seqeval's scores per entity type. */
  entities?: Record<string, EntityScores>;
  /** SEQ_CLS: confusion[true][predicted] over the validation rows, and each class's precision/recall/F1. */
  confusion?: number[][];
  classes?: ClassScores[];
  /** SEQ_2_SEQ_LM, from greedy generation: exact match (0-1), corpus chrF (0-100), mean ROUGE-L F (0-1). */
  exactMatch?: number;
  chrf?: number;
  rougeL?: number;
  rows: number;
}

/** SEQ_2_SEQ_LM evaluation by generation: how ids become text (the tokenizer's decode; else ids joined by spaces). */
export interface GenerationEval {
  decode?: (ids: number[]) => string;
  /** Most tokens generated per row (default: the longest target of the rows). */
  maxNewTokens?: number;
  /** Score generation on the first this many rows only (the loss still covers all); default all. */
  maxRows?: number;
  eosTokenId?: number | null;
}

/**
 * How far an evaluation is: `done` of `total` loss batches, then (SEQ_2_SEQ_LM) `done` of `total` rows generated.
 * Reported once at the start of each phase (done 0) and after every batch or row.
 */
export interface EvalProgress {
  phase: 'batches' | 'generation';
  done: number;
  total: number;
}
export type EvalProgressFn = (p: EvalProgress) => void;

/**
 * Runs the validation rows in batches. For TOKEN_CLS with `labelNames` (id2label in id order) the labelled tokens
 * of each row form a sentence of tags, scored as seqeval scores run_ner.py's predictions.
 */
export async function evaluate(
  peft: PeftModel, rows: Encoded[], batchSize: number, padId: number, padding: CollateOptions = {}, labelNames?: readonly string[],
  generation: GenerationEval = {}, onProgress?: EvalProgressFn,
): Promise<EvalMetrics> {
  const task = peft.base.task;
  const batches = Math.ceil(rows.length / batchSize);
  onProgress?.({ phase: 'batches', done: 0, total: batches });
  let lossSum = 0;
  let lossWeight = 0;
  let tokCorrect = 0;
  let tokTotal = 0;
  const counts = emptyCounts(peft.base.config.numLabels);
  const gold: string[][] = [];
  const pred: string[][] = [];
  const tagged = task === 'TOKEN_CLS' && !!labelNames;
  for (let i = 0; i < rows.length; i += batchSize) {
    const batch = collate(rows.slice(i, i + batchSize), task, padId, padding);
    try {
      const out = peftEvaluate(peft, { inputIds: batch.inputIds, attentionMask: batch.attentionMask }, batch.labels);
      // Read back asynchronously (WebGPU's synchronous readback is slow and unreliable on some adapters).
      const [lossArr, preds, labels] = await Promise.all([out.loss.data(), out.preds.data(), out.labels.data()]);
      tf.dispose([out.loss, out.preds, out.labels]);
      const loss = lossArr[0];
      let weight = labels.length;
      if (task !== 'SEQ_CLS') {
        weight = 0;
        for (let j = 0; j < labels.length; j++) if (labels[j] !== IGNORE_INDEX) weight += 1;
      }
      // CLM / TOKEN_CLS loss is a mean over scored tokens, so batches are weighted by their token count.
      lossSum += loss * weight;
      lossWeight += weight;
      if (task === 'SEQ_CLS') addPredictions(counts, preds, labels);
      else {
        // Token rows are [B, T] flattened; a row's tags are its labelled positions in order.
        const width = labels.length / batch.inputIds.shape[0];
        for (let j = 0; j < labels.length; j++) {
          if (tagged && j % width === 0) (gold.push([]), pred.push([]));
          if (labels[j] === IGNORE_INDEX) continue;
          tokTotal += 1;
          if (preds[j] === labels[j]) tokCorrect += 1;
          if (tagged) {
            gold[gold.length - 1].push(labelNames[labels[j]] ?? 'O');
            pred[pred.length - 1].push(labelNames[preds[j]] ?? 'O');
          }
        }
      }
    } finally {
      disposeBatch(batch);
    }
    onProgress?.({ phase: 'batches', done: Math.min(batches, i / batchSize + 1), total: batches });
  }
  const evalLoss = lossWeight ? lossSum / lossWeight : NaN;
  if (task === 'SEQ_CLS') {
    return { evalLoss, accuracy: accuracy(counts), f1: f1Score(counts), confusion: counts.confusion, classes: perClass(counts), rows: rows.length };
  }
  const acc = tokTotal ? tokCorrect / tokTotal : 0;
  if (task === 'SEQ_2_SEQ_LM') return { evalLoss, accuracy: acc, ...(await generationMetrics(peft, rows, padId, generation, onProgress)), rows: rows.length };
  if (tagged) {
    const r = seqeval(gold, pred);
    return { evalLoss, accuracy: acc, precision: r.micro.precision, recall: r.micro.recall, f1: r.micro.f1, entities: r.perType, rows: rows.length };
  }
  return { evalLoss, accuracy: acc, rows: rows.length };
}

/**
 * Greedy generation for every row, scored against its target (Seq2SeqTrainer's predict_with_generate): both sides
 * without -100, pad and EOS, decoded to text.
 */
async function generationMetrics(peft: PeftModel, rows: Encoded[], padId: number, g: GenerationEval, onProgress?: EvalProgressFn) {
  const model = peft.base;
  const eos = g.eosTokenId === undefined ? model.config.eosTokenId : g.eosTokenId;
  const clean = (ids: number[]) => ids.filter((t) => t !== IGNORE_INDEX && t !== eos && t !== padId);
  const text = (ids: number[]) => (g.decode ? g.decode(ids) : ids.join(' '));
  const all = rows;
  rows = g.maxRows ? all.slice(0, g.maxRows) : all;
  const maxNew = g.maxNewTokens ?? Math.max(1, ...rows.map((r) => r.labels?.length ?? 0));
  const hooks = generationHooks(peft);
  const preds: string[] = [];
  const refs: string[] = [];
  try {
    onProgress?.({ phase: 'generation', done: 0, total: rows.length });
    for (const r of rows) {
      preds.push(text(clean(await generateSeq2Seq(model, r.ids, hooks, { maxNewTokens: maxNew, eosTokenId: eos }))));
      refs.push(text(clean(r.labels ?? [])));
      onProgress?.({ phase: 'generation', done: preds.length, total: rows.length });
    }
  } finally {
    releaseGenerationHooks(hooks);
  }
  return generationScores(preds, refs);
}

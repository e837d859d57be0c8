/** Evaluation over a validation set: loss plus accuracy (and F1 for classification). */
import * as tf from '@tensorflow/tfjs';
import { peftEvaluate, type PeftModel } from '../peft/model';
import { collate, disposeBatch, type CollateOptions, type Encoded } from './data';
import { IGNORE_INDEX } from './loss';
import { accuracy, addPredictions, emptyCounts, f1Score } from './metrics';

export interface EvalMetrics {
  evalLoss: number;
  /** SEQ_CLS: share of rows classified right; CLM: share of next tokens predicted right (argmax); TOKEN_CLS: of labelled tokens. */
  accuracy: number;
  /** SEQ_CLS only: F1 of class 1 (binary) or macro F1. */
  f1?: number;
  rows: number;
}

export async function evaluate(peft: PeftModel, rows: Encoded[], batchSize: number, padId: number, padding: CollateOptions = {}): Promise<EvalMetrics> {
  const task = peft.base.task;
  let lossSum = 0;
  let lossWeight = 0;
  let tokCorrect = 0;
  let tokTotal = 0;
  const counts = emptyCounts(peft.base.config.numLabels);
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
        for (let j = 0; j < labels.length; j++) {
          if (labels[j] === IGNORE_INDEX) continue;
          tokTotal += 1;
          if (preds[j] === labels[j]) tokCorrect += 1;
        }
      }
    } finally {
      disposeBatch(batch);
    }
  }
  const evalLoss = lossWeight ? lossSum / lossWeight : NaN;
  if (task === 'SEQ_CLS') return { evalLoss, accuracy: accuracy(counts), f1: f1Score(counts), rows: rows.length };
  return { evalLoss, accuracy: tokTotal ? tokCorrect / tokTotal : 0, rows: rows.length };
}

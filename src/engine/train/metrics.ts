/** Evaluation metrics: accuracy and F1 for classification, next-token accuracy for causal LM. */

export interface ClsCounts {
  correct: number;
  total: number;
  /** confusion[true][pred] */
  confusion: number[][];
}

export function emptyCounts(numLabels: number): ClsCounts {
  return { correct: 0, total: 0, confusion: Array.from({ length: numLabels }, () => new Array(numLabels).fill(0)) };
}

export function addPredictions(c: ClsCounts, preds: ArrayLike<number>, labels: ArrayLike<number>): void {
  for (let i = 0; i < preds.length; i++) {
    c.total += 1;
    if (preds[i] === labels[i]) c.correct += 1;
    const row = c.confusion[labels[i]];
    if (row && preds[i] < row.length) row[preds[i]] += 1;
  }
}

/** Binary F1 of class 1 for two labels (sklearn's default), macro F1 otherwise. */
export function f1Score(c: ClsCounts): number {
  const n = c.confusion.length;
  const f1 = (k: number) => {
    const tp = c.confusion[k][k];
    let fp = 0;
    let fn = 0;
    for (let j = 0; j < n; j++) {
      if (j === k) continue;
      fp += c.confusion[j][k];
      fn += c.confusion[k][j];
    }
    return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  };
  if (n === 2) return f1(1);
  let s = 0;
  for (let k = 0; k < n; k++) s += f1(k);
  return s / n;
}

export function accuracy(c: ClsCounts): number {
  return c.total ? c.correct / c.total : 0;
}

/** Precision, recall and F1 of one class, and its support (true rows of that class). */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Per-class scores from the confusion matrix, as sklearn's classification_report (0 where undefined). */
export function perClass(c: ClsCounts): ClassScores[] {
  const n = c.confusion.length;
  return c.confusion.map((row, k) => {
    const tp = row[k];
    let predicted = 0;
    for (let j = 0; j < n; j++) predicted += c.confusion[j][k];
    const support = row.reduce((a, b) => a + b, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
}

/**
 * Reference points for a classification run, computed on the run's own train / validation split: the
 * majority-class rate (what always answering the most common training label scores) and a bag-of-words logistic
 * regression (what a model that only counts words scores). A fine-tuned language model should beat both; the
 * charts draw them as lines so "learning" has a scale. Deterministic: no randomness anywhere.
 */

/** A labelled example as the baselines read it: its text, or its token ids when it has no text. */
export interface BaselineExample {
  text?: string;
  inputIds?: number[];
  label?: number;
}

export interface ClassBaselines {
  /** The most common training label (ties: the lowest id). */
  majorityLabel: number;
  /** Validation accuracy of always predicting majorityLabel. */
  majority: number;
  /** Validation accuracy of the bag-of-words logistic regression. */
  bagOfWords: number;
  /** Words (or token ids) the regression used: those in at least minCount training examples. */
  features: number;
}

export interface BagOfWordsOptions {
  /** A word is a feature when it occurs in at least this many training examples (default 2). */
  minCount?: number;
  /** Full-batch gradient-descent iterations (default 300). */
  iterations?: number;
  /** Gradient-descent step (default 1; the features are L2-normalised, so the loss is smooth enough for it). */
  step?: number;
  /** L2 penalty on the weights, not the biases (default 1e-4). */
  l2?: number;
}

/** Lower-cased words (letters and digits), or the token ids of a pre-tokenized example. */
export function words(e: BaselineExample): string[] {
  if (e.text !== undefined) return e.text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return (e.inputIds ?? []).map(String);
}

/** The label most frequent in `labels` (ties: the lowest), with its count. */
export function majorityLabel(labels: number[]): number {
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  let best = -1;
  let bestCount = -1;
  for (const [l, c] of counts) if (c > bestCount || (c === bestCount && l < best)) [best, bestCount] = [l, c];
  return best;
}

/** A sparse, L2-normalised word-presence vector: feature indices and values. */
type Row = { idx: number[]; val: number[] };

function featurize(e: BaselineExample, vocab: Map<string, number>): Row {
  const idx = [...new Set(words(e).map((w) => vocab.get(w)).filter((i): i is number => i !== undefined))].sort((a, b) => a - b);
  const v = idx.length ? 1 / Math.sqrt(idx.length) : 0;
  return { idx, val: idx.map(() => v) };
}

/** A multinomial logistic regression on word presence, fitted by full-batch gradient descent from zero. */
export class BagOfWordsClassifier {
  readonly vocab = new Map<string, number>();
  /** weights[k][j]: class k, feature j. */
  readonly weights: Float64Array[];
  readonly bias: Float64Array;

  constructor(train: BaselineExample[], readonly numLabels: number, opts: BagOfWordsOptions = {}) {
    const { minCount = 2, iterations = 300, step = 1, l2 = 1e-4 } = opts;
    const df = new Map<string, number>();
    for (const e of train) for (const w of new Set(words(e))) df.set(w, (df.get(w) ?? 0) + 1);
    // Sorted, so the feature order (and every sum below) does not depend on the data's order of first appearance.
    for (const w of [...df.keys()].sort()) if (df.get(w)! >= minCount) this.vocab.set(w, this.vocab.size);
    const rows = train.map((e) => featurize(e, this.vocab));
    const labels = train.map((e) => e.label ?? 0);
    const K = numLabels;
    const V = this.vocab.size;
    this.weights = Array.from({ length: K }, () => new Float64Array(V));
    this.bias = new Float64Array(K);
    const n = rows.length;
    if (!n) return;
    const gw = Array.from({ length: K }, () => new Float64Array(V));
    const gb = new Float64Array(K);
    const p = new Float64Array(K);
    for (let it = 0; it < iterations; it++) {
      for (const g of gw) g.fill(0);
      gb.fill(0);
      for (let i = 0; i < n; i++) {
        this.probs(rows[i], p);
        p[labels[i]] -= 1; // d(cross-entropy)/d(logit) = p - onehot
        const r = rows[i];
        for (let k = 0; k < K; k++) {
          const d = p[k] / n;
          gb[k] += d;
          const g = gw[k];
          for (let t = 0; t < r.idx.length; t++) g[r.idx[t]] += d * r.val[t];
        }
      }
      for (let k = 0; k < K; k++) {
        const w = this.weights[k];
        const g = gw[k];
        for (let j = 0; j < V; j++) w[j] -= step * (g[j] + l2 * w[j]);
        this.bias[k] -= step * gb[k];
      }
    }
  }

  private probs(r: Row, out: Float64Array): Float64Array {
    let max = -Infinity;
    for (let k = 0; k < this.numLabels; k++) {
      let z = this.bias[k];
      const w = this.weights[k];
      for (let t = 0; t < r.idx.length; t++) z += w[r.idx[t]] * r.val[t];
      out[k] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let k = 0; k < this.numLabels; k++) sum += out[k] = Math.exp(out[k] - max);
    for (let k = 0; k < this.numLabels; k++) out[k] /= sum;
    return out;
  }

  /** Class probabilities for one example. */
  predictProba(e: BaselineExample): number[] {
    return [...this.probs(featurize(e, this.vocab), new Float64Array(this.numLabels))];
  }

  /** The most probable class (ties: the lowest id). */
  predict(e: BaselineExample): number {
    const p = this.predictProba(e);
    return p.indexOf(Math.max(...p));
  }
}

/**
 * Majority-class rate and bag-of-words logistic regression accuracy on `validation`, fitted on `train`; null when
 * either split has no labelled rows.
 */
export function classBaselines(train: BaselineExample[], validation: BaselineExample[], numLabels: number, opts: BagOfWordsOptions = {}): ClassBaselines | null {
  const tr = train.filter((e) => e.label !== undefined);
  const va = validation.filter((e) => e.label !== undefined);
  if (!tr.length || !va.length) return null;
  const K = Math.max(numLabels, ...tr.map((e) => e.label! + 1), ...va.map((e) => e.label! + 1));
  const maj = majorityLabel(tr.map((e) => e.label!));
  const clf = new BagOfWordsClassifier(tr, K, opts);
  let hits = 0;
  for (const e of va) hits += clf.predict(e) === e.label ? 1 : 0;
  return {
    majorityLabel: maj,
    majority: va.filter((e) => e.label === maj).length / va.length,
    bagOfWords: hits / va.length,
    features: clf.vocab.size,
  };
}

/**
 * TOKEN_CLS: the all-O tagger on the validation rows (every scored token predicted `oId`): its token accuracy is the
 * O rate, its entity F1 0 (it finds no entity). Shaped as ClassBaselines (majority = the O rate, no bag-of-words).
 */
export function allOTagger(validation: readonly { labels?: number[] }[], oId: number): ClassBaselines {
  let total = 0;
  let o = 0;
  for (const e of validation) {
    for (const l of e.labels ?? []) {
      if (l < 0) continue;
      total += 1;
      if (l === oId) o += 1;
    }
  }
  return { majorityLabel: oId, majority: total ? o / total : 0, bagOfWords: Number.NaN, features: 0 };
}

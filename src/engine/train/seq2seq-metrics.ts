/**
 * Scores of generated text against references, as the Hugging Face `evaluate` metrics compute them:
 * - exact match: the share of predictions equal to their reference (evaluate's exact_match, no normalisation);
 * - chrF: sacrebleu's CHRF defaults (char_order 6, word_order 0, beta 2, whitespace removed), corpus level:
 *   each order's hypothesis / reference / matching n-gram counts are summed over the corpus, precision and recall
 *   are averaged over the orders and combined into F-beta (sacrebleu 2.x _compute_f_score), times 100;
 * - ROUGE-L: rouge_score's LCS F-measure on its default tokens (lowercased, every run of characters other than
 *   a-z / 0-9 a separator, no stemmer), averaged over the examples.
 * Pure functions (no tfjs).
 */

/** Share of predictions equal to their reference (0 for none). */
export function exactMatch(preds: readonly string[], refs: readonly string[]): number {
  checkPairs(preds, refs);
  if (!preds.length) return 0;
  let n = 0;
  preds.forEach((p, i) => (n += p === refs[i] ? 1 : 0));
  return n / preds.length;
}

function checkPairs(preds: readonly string[], refs: readonly string[]): void {
  if (preds.length !== refs.length) throw new Error(`internal: ${preds.length} predictions for ${refs.length} references`);
}

/** Character n-gram counts of a sentence with its whitespace removed (sacrebleu extract_all_char_ngrams). */
function charNgrams(s: string, n: number): Map<string, number> {
  const chars = [...s.split(/\s+/).join('')];
  const out = new Map<string, number>();
  for (let i = 0; i + n <= chars.length; i++) {
    const g = chars.slice(i, i + n).join('');
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

/** Per order: [hypothesis n-grams, reference n-grams, matches] (sacrebleu's sentence statistics). */
function chrfStats(hyp: string, ref: string, order: number): number[] {
  const stats: number[] = [];
  for (let n = 1; n <= order; n++) {
    const h = charNgrams(hyp, n);
    const r = charNgrams(ref, n);
    let nh = 0;
    let nr = 0;
    let m = 0;
    for (const c of h.values()) nh += c;
    for (const [g, c] of r) {
      nr += c;
      m += Math.min(c, h.get(g) ?? 0);
    }
    stats.push(nh, nr, m);
  }
  return stats;
}

/** sacrebleu CHRF._compute_f_score over summed statistics. */
function chrfScore(stats: number[], order: number, beta: number): number {
  const eps = 1e-16;
  const factor = beta * beta;
  let effective = 0;
  let avgP = 0;
  let avgR = 0;
  for (let i = 0; i < order; i++) {
    const [nh, nr, m] = stats.slice(3 * i, 3 * i + 3);
    avgP += nh > 0 ? m / nh : eps;
    avgR += nr > 0 ? m / nr : eps;
    if (nh > 0 && nr > 0) effective += 1;
  }
  if (effective === 0) return 0;
  avgP /= effective;
  avgR /= effective;
  if (avgP + avgR === 0) return 0;
  return (100 * (1 + factor) * avgP * avgR) / (factor * avgP + avgR);
}

/** Corpus chrF (0-100) of predictions against one reference each. */
export function chrF(preds: readonly string[], refs: readonly string[], o: { charOrder?: number; beta?: number } = {}): number {
  checkPairs(preds, refs);
  const order = o.charOrder ?? 6;
  const total = new Array<number>(3 * order).fill(0);
  preds.forEach((p, i) => chrfStats(p, refs[i], order).forEach((v, j) => (total[j] += v)));
  return chrfScore(total, order, o.beta ?? 2);
}

/** rouge_score's default tokenizer: lowercase, non-alphanumerics (a-z, 0-9) become spaces, split on whitespace. */
export function rougeTokens(s: string): string[] {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim().split(' ').filter((t) => t.length > 0);
}

/** Length of the longest common subsequence of two token lists. */
function lcs(a: readonly string[], b: readonly string[]): number {
  const prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(prev[j], prev[j - 1]);
      diag = up;
    }
  }
  return prev[b.length];
}

/** ROUGE-L F-measure of one prediction against its reference (rouge_score _score_lcs; 0 when either is empty). */
export function rougeLPair(pred: string, ref: string): number {
  const p = rougeTokens(pred);
  const r = rougeTokens(ref);
  if (!p.length || !r.length) return 0;
  const l = lcs(r, p);
  const precision = l / p.length;
  const recall = l / r.length;
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

/** Mean ROUGE-L F-measure over the examples (0-1; 0 for none). */
export function rougeL(preds: readonly string[], refs: readonly string[]): number {
  checkPairs(preds, refs);
  if (!preds.length) return 0;
  return preds.reduce((a, p, i) => a + rougeLPair(p, refs[i]), 0) / preds.length;
}

export interface GenerationScores {
  exactMatch: number;
  chrf: number;
  rougeL: number;
}

export function generationScores(preds: readonly string[], refs: readonly string[]): GenerationScores {
  return { exactMatch: exactMatch(preds, refs), chrf: chrF(preds, refs), rougeL: rougeL(preds, refs) };
}

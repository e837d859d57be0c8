/**
 * A word-level diff of two texts for the playground: the longest common subsequence over words (whitespace kept
 * with the word before it), so the spans where the adapter-on and adapter-off texts differ can be highlighted.
 */

/** A run of words, the same in both texts or only in one of them. */
export interface DiffSpan {
  text: string;
  same: boolean;
}

/** Splits into words, each with the whitespace that follows it ("a  b" -> ["a  ", "b"]); leading space stays on its own. */
export function words(s: string): string[] {
  return s.match(/\s+|\S+\s*/gy) ?? [];
}

/**
 * The spans of `a` and of `b` marked same (in the LCS of their words, compared without trailing whitespace) or
 * different; adjacent words of one kind are joined. O(n·m) in words, fine for a few hundred words.
 */
export function wordDiff(a: string, b: string): { a: DiffSpan[]; b: DiffSpan[] } {
  const x = words(a);
  const y = words(b);
  const key = (w: string) => w.trimEnd();
  const n = x.length;
  const m = y.length;
  // L[i][j]: LCS length of x[i..] and y[j..].
  const L = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = key(x[i]) === key(y[j]) ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const sa: boolean[] = new Array(n).fill(false);
  const sb: boolean[] = new Array(m).fill(false);
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (key(x[i]) === key(y[j])) {
      sa[i++] = true;
      sb[j++] = true;
    } else if (L[i + 1][j] >= L[i][j + 1]) i++;
    else j++;
  }
  return { a: spans(x, sa), b: spans(y, sb) };
}

function spans(ws: string[], same: boolean[]): DiffSpan[] {
  const out: DiffSpan[] = [];
  ws.forEach((w, i) => {
    const last = out[out.length - 1];
    if (last && last.same === same[i]) last.text += w;
    else out.push({ text: w, same: same[i] });
  });
  return out;
}

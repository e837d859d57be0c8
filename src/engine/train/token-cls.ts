/**
 * Token-classification data: CoNLL text and word-level labels aligned to sub-word tokens as transformers'
 * token-classification recipe (examples/pytorch/token-classification/run_ner.py) does. Pure functions.
 */
import { EngineError } from '../errors';
import { IGNORE_INDEX } from './loss';

export interface TaggedSentence {
  tokens: string[];
  tags: string[];
  /** 1-based line of the sentence's first token, for messages. */
  line: number;
}

/**
 * CoNLL: one `token label` line per word (columns split on whitespace; the first is the word, the last its
 * label, as in CoNLL-2003's `word POS chunk NER`), a blank line between sentences, `-DOCSTART-` lines skipped.
 */
export function parseConll(text: string, source = 'data'): TaggedSentence[] {
  const out: TaggedSentence[] = [];
  let cur: TaggedSentence | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('-DOCSTART-')) {
      if (cur) out.push(cur);
      cur = null;
      return;
    }
    const cols = line.split(/\s+/);
    if (cols.length < 2) {
      throw new EngineError('BAD_DATA', `${source} line ${i + 1}: "${line}" has no label; CoNLL lines are "token label" (blank lines between sentences).`);
    }
    cur ??= { tokens: [], tags: [], line: i + 1 };
    cur.tokens.push(cols[0]);
    cur.tags.push(cols[cols.length - 1]);
  });
  if (cur) out.push(cur);
  if (!out.length) throw new EngineError('BAD_DATA', `${source} has no sentences: CoNLL lines are "token label", a blank line between sentences.`);
  return out;
}

/** run_ner.py's b_to_i_label: each label's I- twin where the list has one (B-PER -> I-PER), else itself. */
export function bToI(labels: readonly string[]): number[] {
  return labels.map((l, i) => {
    if (!l.startsWith('B-')) return i;
    const j = labels.indexOf(`I-${l.slice(2)}`);
    return j < 0 ? i : j;
  });
}

/**
 * Labels per token from the word each token came from (`wordIds`, null for special tokens): the first token of a
 * word gets the word's label, the rest -100, or with `labelAllTokens` the word's label mapped B- -> I-.
 */
export function alignLabels(wordIds: readonly (number | null)[], wordLabels: readonly number[], labelAllTokens = false, bToILabel?: readonly number[]): number[] {
  let prev: number | null = null;
  return wordIds.map((w) => {
    let out = IGNORE_INDEX;
    if (w !== null) {
      const l = wordLabels[w];
      if (w !== prev) out = l;
      else if (labelAllTokens) out = bToILabel ? bToILabel[l] : l;
    }
    prev = w;
    return out;
  });
}

/**
 * Encodes one sentence of words: each word tokenized on its own (`encodeWord(word, index)`: word pieces, or for
 * byte-level BPE the word after a space when index > 0, as is_split_into_words does), between the model's special
 * tokens; returns ids and the word index of each id.
 */
export function encodeWords(
  words: readonly string[], encodeWord: (w: string, i: number) => number[], special: { prefix: number[]; suffix: number[] },
): { ids: number[]; wordIds: (number | null)[] } {
  const ids = [...special.prefix];
  const wordIds: (number | null)[] = special.prefix.map(() => null);
  words.forEach((w, i) => {
    for (const t of encodeWord(w, i)) (ids.push(t), wordIds.push(i));
  });
  for (const t of special.suffix) (ids.push(t), wordIds.push(null));
  return { ids, wordIds };
}

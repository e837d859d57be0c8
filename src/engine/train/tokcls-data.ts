/**
 * Token-classification data files, framework-free (the CLI, the worker and tests share them): CoNLL text
 * (`token label` lines, blank lines between sentences, -DOCSTART- skipped), JSONL rows {"tokens": [...],
 * "ner_tags": [...]} (tag names, or ids into the label list) and pre-tokenized {"input_ids": [...], "labels": [...]}.
 * Words become the model tokenizer's sub-words with labels aligned as transformers' run_ner.py aligns them
 * (first sub-token labelled, or all with labelAllTokens), and the data is summarised (sentences, entities per type).
 */
import { EngineError } from '../errors';
import { listNames, quoteValue } from '../quote';
import { dataText, parseDataFile, type DataIssue } from './data-parse';
import { IGNORE_INDEX } from './loss';
import { alignLabels, bToI, encodeWords } from './token-cls';

/** What encoding words needs of a tokenizer (the engine's Tokenizer has it). */
export interface WordEncoder {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
}

/** One sentence before label ids are assigned: words + tags, or input ids + a tag per id. */
export interface TokenClsRow {
  file: string;
  line: number;
  words?: string[];
  inputIds?: number[];
  /** A tag per word (or per input id of pre-tokenized rows): a name, or an id into the label list. */
  tags?: (string | number)[];
  /** Set by encodeTokenClsRows: a class id per input id, -100 where not scored. */
  labels?: number[];
  /** How messages name the row, when not "<file> line N". */
  where?: string;
}

export interface TokenClsReadOptions {
  /** Read the file as CoNLL whatever its extension. */
  conll?: boolean;
  /** The JSONL column of the words (default "tokens"). */
  tokensColumn?: string;
  /** The JSONL column of the tags (default "ner_tags", "tags", or "labels" next to "input_ids"). */
  tagsColumn?: string;
}

/** Whether a file is read as CoNLL: asked for, or a .conll / .iob / .bio / .txt file. */
export function isConllPath(path: string, conll = false): boolean {
  return conll || /\.(conll|conllu?|iob2?|bio|txt)$/i.test(path);
}

/**
 * Parses a CoNLL or JSONL token-classification file (bytes or text). Structural problems (no such column, not a
 * supported file type, no sentences) throw BAD_DATA; bad rows are returned as issues by line, the rest as rows.
 */
export function parseTokenClsFile(file: string, content: string | Uint8Array | ArrayBuffer, o: TokenClsReadOptions = {}): { rows: TokenClsRow[]; issues: DataIssue[] } {
  if (isConllPath(file, o.conll)) return parseConllRows(file, dataText(file, content));
  if (!/\.(jsonl|ndjson)$/i.test(file)) {
    throw new EngineError('BAD_DATA', `${file}: token classification reads CoNLL (.conll, .txt: "token label" lines) or JSONL ({"tokens", "ner_tags"}) files`);
  }
  const table = parseDataFile(file, content, 'jsonl');
  const issues: DataIssue[] = [...table.issues];
  const rows: TokenClsRow[] = [];
  const cols = table.columns;
  const pre = cols.includes('input_ids');
  const tokCol = o.tokensColumn ?? 'tokens';
  const tagCol = o.tagsColumn ?? (pre ? 'labels' : ['ner_tags', 'tags'].find((c) => cols.includes(c)) ?? 'ner_tags');
  for (const c of pre ? ['input_ids', tagCol] : [tokCol, tagCol]) {
    if (!cols.includes(c)) {
      throw new EngineError('BAD_DATA', `${file}: no column ${quoteValue(c)}; columns are ${listNames(cols)} (token_cls rows are {"tokens", "ner_tags"} or {"input_ids", "labels"})`);
    }
  }
  table.rows.forEach((row, i) => {
    const line = table.lines[i];
    const issue = (message: string) => issues.push({ file, line, message });
    const a = jsonList(row[pre ? 'input_ids' : tokCol]);
    const b = jsonList(row[tagCol]);
    if (!a || !a.length) return void issue(`${pre ? 'input_ids' : tokCol} must be a non-empty JSON list`);
    if (!b || b.length !== a.length) return void issue(`${tagCol} must be a list with one entry per ${pre ? 'input id' : 'token'} (${a.length})`);
    if (b.some((x) => typeof x !== 'string' && !Number.isInteger(x))) return void issue(`${tagCol} must hold tag names or integer ids`);
    if (pre) {
      if (a.some((x) => !Number.isInteger(x) || (x as number) < 0)) return void issue('input_ids must hold non-negative integers');
      rows.push({ file, line, inputIds: a as number[], tags: b as (string | number)[] });
    } else {
      if (a.some((x) => typeof x !== 'string')) return void issue(`${tokCol} must be a list of strings`);
      rows.push({ file, line, words: a as string[], tags: b as (string | number)[] });
    }
  });
  return { rows, issues };
}

/** CoNLL sentences as rows; a line with a single column is an issue (its sentence is dropped), not an exception. */
function parseConllRows(file: string, text: string): { rows: TokenClsRow[]; issues: DataIssue[] } {
  const rows: TokenClsRow[] = [];
  const issues: DataIssue[] = [];
  let cur: { row: TokenClsRow; bad: boolean } | null = null;
  const flush = () => {
    if (cur && !cur.bad) rows.push(cur.row);
    cur = null;
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('-DOCSTART-')) return flush();
    cur ??= { row: { file, line: i + 1, words: [], tags: [] }, bad: false };
    const cols = line.split(/\s+/);
    if (cols.length < 2) {
      if (!cur.bad) issues.push({ file, line: i + 1, message: `${quoteValue(line)} has no label; CoNLL lines are "token label" (blank lines between sentences)` });
      cur.bad = true;
      return;
    }
    cur.row.words!.push(cols[0]);
    cur.row.tags!.push(cols[cols.length - 1]);
  });
  flush();
  if (!rows.length && !issues.length) throw new EngineError('BAD_DATA', `${file} has no sentences: CoNLL lines are "token label", a blank line between sentences.`);
  return { rows, issues };
}

function jsonList(cell: string | undefined): unknown[] | null {
  try {
    const v: unknown = JSON.parse(cell ?? '');
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

const isDefaultNames = (names: string[]) => names.every((n, i) => n === `LABEL_${i}`);

/** A comma-separated label list ("O,B-PER,I-PER") in id order; fewer than two or repeated tags are BAD_ARGUMENT. */
export function parseLabelList(text: string, what = 'the label list'): string[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length < 2 || new Set(names).size !== names.length) throw new EngineError('BAD_ARGUMENT', `${what} needs two or more distinct tags, got ${quoteValue(text)}`);
  return names;
}

/**
 * The tag list in id order: the given list, else config.json's id2label when it names its labels, else the string
 * tags of the data sorted (run_ner.py's get_label_list), else (integer tags) config.json's LABEL_i names.
 */
export function tagList(rows: readonly TokenClsRow[], given: string[] | undefined, configNames: string[] | null, hint = 'give --label-list B-PER,I-PER,... in id order'): string[] {
  if (given !== undefined) return given;
  if (configNames && !isDefaultNames(configNames)) return configNames;
  const strings = [...new Set(rows.flatMap((r) => (r.tags ?? []).filter((t): t is string => typeof t === 'string')))];
  if (strings.length) return strings.sort();
  if (configNames) return configNames;
  throw new EngineError('BAD_ARGUMENT', `the tags are ids but there is no label list: ${hint}`);
}

/** The tokenizer's special tokens around a text (BERT: [CLS] ... [SEP]; GPT-2: none). */
export function specialTokens(tok: WordEncoder): { prefix: number[]; suffix: number[] } {
  const full = tok.encode('a');
  const core = tok.encode('a', { addSpecialTokens: false });
  for (let i = 0; i + core.length <= full.length; i++) {
    if (core.every((t, j) => full[i + j] === t)) return { prefix: full.slice(0, i), suffix: full.slice(i + core.length) };
  }
  return { prefix: [], suffix: [] };
}

/** A sentence's words as the model's tokens: ids and the word each id came from (null for special tokens). */
export function encodeSentence(words: readonly string[], tok: WordEncoder): { ids: number[]; wordIds: (number | null)[] } {
  return encodeWords(words, (w, i) => tok.encode(i > 0 ? ` ${w}` : w, { addSpecialTokens: false }), specialTokens(tok));
}

export interface EncodeHints {
  /** Said after "is not in the label list (...);" (default: "give --label-list"). */
  unknownTag?: string;
  /** Said when words come without a tokenizer. */
  noTokenizer?: string;
}

/**
 * Turns word rows into input_ids + aligned labels (ids into `names`), and checks tag ids of pre-tokenized rows;
 * a tag outside the list is an error naming its line. Mutates and returns the rows.
 */
export function encodeTokenClsRows<R extends TokenClsRow>(rows: R[], names: string[], tok: WordEncoder | null | undefined, labelAllTokens: boolean, hints: EncodeHints = {}): R[] {
  const index = new Map(names.map((n, i) => [n, i]));
  const b2i = bToI(names);
  const special = tok ? specialTokens(tok) : { prefix: [], suffix: [] };
  for (const r of rows) {
    const where = r.where ?? `${r.file} line ${r.line}`;
    const ids = (r.tags ?? []).map((t) => {
      if (t === IGNORE_INDEX && r.inputIds) return t;
      const id = typeof t === 'number' ? (t >= 0 && t < names.length ? t : undefined) : index.get(t);
      if (id === undefined) throw new EngineError('BAD_DATA', `${where}: tag ${quoteValue(t)} is not in the label list (${listNames(names)}); ${hints.unknownTag ?? 'give --label-list'}`);
      return id;
    });
    if (r.words) {
      if (!tok) throw new EngineError('BAD_DATA', `${where}: ${hints.noTokenizer ?? 'the words need the model\'s tokenizer.json; give --tokenizer DIR or pre-tokenized {"input_ids", "labels"} rows'}`);
      const enc = encodeWords(r.words, (w, i) => tok.encode(i > 0 ? ` ${w}` : w, { addSpecialTokens: false }), special);
      r.inputIds = enc.ids;
      r.labels = alignLabels(enc.wordIds, ids, labelAllTokens, b2i);
    } else r.labels = ids;
  }
  return rows;
}

/** IOB2 entity spans of a tag sequence (B-X starts, I-X continues the same type; a stray I-X starts one too). */
export function entitySpans(tags: readonly string[]): { type: string; start: number; end: number }[] {
  const out: { type: string; start: number; end: number }[] = [];
  let cur: { type: string; start: number; end: number } | null = null;
  tags.forEach((t, i) => {
    const m = /^([BIES])-(.+)$/.exec(t);
    if (m && (m[1] === 'I' || m[1] === 'E') && cur && cur.type === m[2]) {
      cur.end = i + 1;
      return;
    }
    cur = null;
    if (m) out.push((cur = { type: m[2], start: i, end: i + 1 }));
  });
  return out;
}

/** Words of free text as the built-in tagging data splits them: letter runs, numbers (with , and .), single marks. */
export function splitWords(text: string): string[] {
  return text.match(/\p{L}+(?:['’-]\p{L}+)*|\d+(?:[.,]\d+)*|[^\s\p{L}\d]/gu) ?? [];
}

/** What the data panel shows: sentences, words, entities per type, and how many sentences the length cuts. */
export interface TokenClsStats {
  sentences: number;
  words: number;
  /** Share of scored words tagged O. */
  oRate: number;
  entities: Record<string, number>;
  /** Sentences whose tokens run past maxLength (their tail is not trained on). */
  truncated: number;
}

/** Statistics of encoded rows; `names` turns tag ids into names. */
export function tokenClsStats(rows: readonly TokenClsRow[], names: readonly string[], maxLength: number): TokenClsStats {
  const entities: Record<string, number> = {};
  let words = 0;
  let o = 0;
  let truncated = 0;
  for (const r of rows) {
    const tags = (r.tags ?? []).map((t) => (typeof t === 'number' ? names[t] ?? 'O' : t));
    const scored = tags.filter((_, i) => r.tags![i] !== IGNORE_INDEX);
    words += scored.length;
    o += scored.filter((t) => t === 'O').length;
    for (const s of entitySpans(scored)) entities[s.type] = (entities[s.type] ?? 0) + 1;
    if ((r.inputIds?.length ?? 0) > maxLength) truncated += 1;
  }
  return { sentences: rows.length, words, oRate: words ? o / words : 0, entities, truncated };
}

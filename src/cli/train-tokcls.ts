/**
 * `train --task token_cls` data: CoNLL files (`token label` lines, blank lines between sentences), JSONL rows
 * {"tokens": [...], "ner_tags": [...]} (tags as strings or ids into the label list) or pre-tokenized
 * {"input_ids": [...], "labels": [...]}. Words become the model tokenizer's sub-words with labels aligned as
 * transformers' run_ner.py aligns them (first sub-token labelled, or all with --label-all-tokens).
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors';
import { listNames, quoteValue } from '../engine/quote';
import { dataText, issueText, parseDataFile, type DataIssue } from '../engine/train/data-parse';
import { IGNORE_INDEX } from '../engine/train/loss';
import { alignLabels, bToI, encodeWords, parseConll } from '../engine/train/token-cls';
import type { Tokenizer } from '../engine/tokenizer';
import { note, requireFile, type CommandSpec } from './common';
import type { RawExample } from './train-data';

export const TOKEN_CLS_OPTIONS: CommandSpec['options'] = {
  'label-list': { kind: 'value', arg: 'B-PER,I-PER,...', help: 'token_cls: the tags in id order (default: config.json id2label unless LABEL_0.., else the data\'s tags sorted).' },
  'label-all-tokens': { kind: 'flag', help: 'token_cls: label every sub-token of a word (B- becomes I- after the first), not only the first.' },
};

export interface TokenClsReadOptions {
  /** --data-format conll: read the file as CoNLL whatever its extension. */
  conll: boolean;
  tokensColumn?: string;
  tagsColumn?: string;
  skipBadRows?: boolean;
}

/** Whether a path is read as CoNLL: --data-format conll, or a .conll / .iob / .bio / .txt file. */
export function isConllPath(path: string, conll: boolean): boolean {
  return conll || /\.(conll|conllu?|iob2?|bio|txt)$/i.test(path);
}

/** Reads a token-classification file into raw examples (words + tags, or input_ids + labels). */
export function readTokenClsFile(path: string, o: TokenClsReadOptions): RawExample[] {
  requireFile(path, 'data file');
  const bytes = readFileSync(path);
  if (isConllPath(path, o.conll)) {
    return parseConll(dataText(path, bytes), path).map((s) => ({ file: path, line: s.line, words: s.tokens, tags: s.tags }));
  }
  if (!/\.(jsonl|ndjson)$/i.test(path)) {
    throw new EngineError('BAD_DATA', `${path}: token classification reads CoNLL (.conll, .txt or --data-format conll) or JSONL files`);
  }
  const table = parseDataFile(path, bytes, 'jsonl');
  const issues: DataIssue[] = [...table.issues];
  const out: RawExample[] = [];
  const cols = table.columns;
  const pre = cols.includes('input_ids');
  const tokCol = o.tokensColumn ?? 'tokens';
  const tagCol = o.tagsColumn ?? (pre ? 'labels' : ['ner_tags', 'tags'].find((c) => cols.includes(c)) ?? 'ner_tags');
  for (const c of pre ? ['input_ids', tagCol] : [tokCol, tagCol]) {
    if (!cols.includes(c)) {
      throw new EngineError('BAD_DATA', `${path}: no column ${quoteValue(c)}; columns are ${listNames(cols)} (token_cls rows are {"tokens", "ner_tags"} or {"input_ids", "labels"})`);
    }
  }
  table.rows.forEach((row, i) => {
    const line = table.lines[i];
    const issue = (message: string) => issues.push({ file: path, line, message });
    const a = jsonList(row[pre ? 'input_ids' : tokCol]);
    const b = jsonList(row[tagCol]);
    if (!a || !a.length) return void issue(`${pre ? 'input_ids' : tokCol} must be a non-empty JSON list`);
    if (!b || b.length !== a.length) return void issue(`${tagCol} must be a list with one entry per ${pre ? 'input id' : 'token'} (${a.length})`);
    if (b.some((x) => typeof x !== 'string' && !Number.isInteger(x))) return void issue(`${tagCol} must hold tag names or integer ids`);
    if (pre) {
      if (a.some((x) => !Number.isInteger(x) || (x as number) < 0)) return void issue('input_ids must hold non-negative integers');
      out.push({ file: path, line, inputIds: a as number[], tags: b as (string | number)[] });
    } else {
      if (a.some((x) => typeof x !== 'string')) return void issue(`${tokCol} must be a list of strings`);
      out.push({ file: path, line, words: a as string[], tags: b as (string | number)[] });
    }
  });
  if (issues.length && !o.skipBadRows) {
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${issueText(issues[0])}${more}`);
  }
  for (const i of issues.slice(0, 20)) note(`warning: skipped ${issueText(i)}`);
  if (!out.length) throw new EngineError('BAD_DATA', `${path}: no usable rows`);
  return out;
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

/**
 * The tag list in id order: --label-list, else config.json's id2label when it names its labels, else the string
 * tags of the data sorted (run_ner.py's get_label_list), else (integer tags) config.json's LABEL_i names.
 */
export function tagList(rows: RawExample[], flagList: string | undefined, configNames: string[] | null): string[] {
  if (flagList !== undefined) {
    const names = flagList.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length < 2 || new Set(names).size !== names.length) throw new EngineError('BAD_ARGUMENT', `--label-list needs two or more distinct tags, got ${quoteValue(flagList)}`);
    return names;
  }
  if (configNames && !isDefaultNames(configNames)) return configNames;
  const strings = [...new Set(rows.flatMap((r) => (r.tags ?? []).filter((t): t is string => typeof t === 'string')))];
  if (strings.length) return strings.sort();
  if (configNames) return configNames;
  throw new EngineError('BAD_ARGUMENT', 'the tags are ids but there is no label list: give --label-list B-PER,I-PER,... in id order');
}

/** The tokenizer's special tokens around a text (BERT: [CLS] ... [SEP]; GPT-2: none). */
function specialTokens(tok: Tokenizer): { prefix: number[]; suffix: number[] } {
  const full = tok.encode('a');
  const core = tok.encode('a', { addSpecialTokens: false });
  for (let i = 0; i + core.length <= full.length; i++) {
    if (core.every((t, j) => full[i + j] === t)) return { prefix: full.slice(0, i), suffix: full.slice(i + core.length) };
  }
  return { prefix: [], suffix: [] };
}

/**
 * Turns word rows into input_ids + aligned labels (ids into `names`), and checks tag ids of pre-tokenized rows;
 * a tag outside the list is an error naming its line. Mutates and returns the rows.
 */
export function encodeTokenClsRows(rows: RawExample[], names: string[], tok: Tokenizer | undefined, labelAllTokens: boolean): RawExample[] {
  const index = new Map(names.map((n, i) => [n, i]));
  const b2i = bToI(names);
  const special = tok ? specialTokens(tok) : { prefix: [], suffix: [] };
  for (const r of rows) {
    const where = r.where ?? `${r.file} line ${r.line}`;
    const ids = (r.tags ?? []).map((t) => {
      if (t === IGNORE_INDEX && r.inputIds) return t;
      const id = typeof t === 'number' ? (t >= 0 && t < names.length ? t : undefined) : index.get(t);
      if (id === undefined) throw new EngineError('BAD_DATA', `${where}: tag ${quoteValue(t)} is not in the label list (${listNames(names)}); give --label-list`);
      return id;
    });
    if (r.words) {
      if (!tok) throw new EngineError('BAD_DATA', `${where}: the words need the model's tokenizer.json; give --tokenizer DIR or pre-tokenized {"input_ids", "labels"} rows`);
      const enc = encodeWords(r.words, (w, i) => tok.encode(i > 0 ? ` ${w}` : w, { addSpecialTokens: false }), special);
      r.inputIds = enc.ids;
      r.labels = alignLabels(enc.wordIds, ids, labelAllTokens, b2i);
    } else r.labels = ids;
  }
  return rows;
}

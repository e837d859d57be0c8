/**
 * Training data for the CLI: TXT / JSONL / CSV parsed by the engine's data-parse (papaparse for CSV, line
 * numbers everywhere), mapped to examples: text, text + label, prompt + response, pre-tokenized input_ids
 * (+ label), or rows of an instruction / chat format (kept whole here; train-chat.ts renders them once the
 * tokenizer is known). The CLI is strict: any bad row stops the run with "<file> line N: ..." unless --skip-bad-rows.
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors';
import type { TaskType } from '../engine/models/types';
import type { Example } from '../engine/train/data';
import { listNames, quoteValue } from '../engine/quote';
import { dataText, dataWarnings, detectFormat, issueText, parseDataFile, type DataIssue, type DataTable } from '../engine/train/data-parse';
import { resolveFormat, type ChatFormat, type DataFormatSetting } from '../engine/train/chat-format';
import { note, requireFile, usage } from './common';

export interface DataOptions {
  task: TaskType;
  textColumn?: string;
  labelColumn?: string;
  promptColumn?: string;
  responseColumn?: string;
  /** TXT: one example per non-empty line instead of per paragraph. */
  txtLines?: boolean;
  /** Report bad rows on stderr and go on, instead of stopping. */
  skipBadRows?: boolean;
  /** Instruction / chat format of the rows (default auto: from the columns). */
  format?: DataFormatSetting;
}

/** An example before label ids are assigned, remembering where it came from. */
export interface RawExample {
  file: string;
  line: number;
  text?: string;
  prompt?: string;
  response?: string;
  inputIds?: number[];
  /** SEQ_CLS: the label as written in the file. */
  label?: string;
  /** SEQ_2_SEQ_LM: the target text (`text` is the source). */
  target?: string;
  /** A row of an instruction / chat format, whole (rendered and tokenized by train-chat.ts into inputIds + labels). */
  row?: Record<string, unknown>;
  chat?: ChatFormat;
  /** CLM labels for inputIds (-100 where not trained on); TOKEN_CLS: a class id per input id. */
  labels?: number[];
  /** TOKEN_CLS: the sentence's words (before sub-word tokenization) ... */
  words?: string[];
  /** ... and a tag per word (or per input id of pre-tokenized rows): a name, or an id into the label list. */
  tags?: (string | number)[];
  /** How messages name the row, when not "<file> line N" (Hub rows: "owner/name train row N"). */
  where?: string;
}

function fail(i: DataIssue): EngineError {
  return new EngineError('BAD_DATA', issueText(i));
}

/** Stops on the first issue (or warns about all of them with --skip-bad-rows). */
function checkIssues(issues: DataIssue[], skip: boolean | undefined): void {
  if (!issues.length) return;
  if (!skip) {
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${issueText(issues[0])}${more}`);
  }
  for (const i of issues.slice(0, 20)) note(`warning: skipped ${issueText(i)}`);
  if (issues.length > 20) note(`warning: skipped ${issues.length - 20} more bad row(s)`);
}

/** TXT with one example per non-empty line. */
function txtLinesTable(file: string, content: Uint8Array): DataTable {
  const text = dataText(file, content);
  const table: DataTable = { file, format: 'txt', columns: ['text'], rows: [], lines: [], issues: [] };
  text.replace(/\r\n?/g, '\n').split('\n').forEach((l, i) => {
    if (l.trim() === '') return;
    table.rows.push({ text: l });
    table.lines.push(i + 1);
  });
  if (!table.rows.length) throw new EngineError('BAD_DATA', `${file}: no rows found; the file is empty`);
  return table;
}

function parseIds(cell: string): number[] | string {
  let v: unknown;
  try {
    v = JSON.parse(cell);
  } catch {
    return `input_ids must be a JSON list of token ids, got ${quoteValue(cell, 40)}`;
  }
  if (!Array.isArray(v) || !v.length) return 'input_ids must be a non-empty list of token ids';
  const bad = v.find((t) => typeof t !== 'number' || !Number.isInteger(t) || t < 0);
  if (bad !== undefined) return `input_ids must hold non-negative integers, found ${quoteValue(bad)}`;
  return v as number[];
}

/** Reads one data file into raw examples. */
export function readDataFile(path: string, o: DataOptions): RawExample[] {
  requireFile(path, 'data file');
  const format = detectFormat(path);
  // Bytes, not a utf8 string: UTF-16, binary and non-UTF-8 files are refused with what they are (engine/io/text.ts).
  const bytes = readFileSync(path);
  const table = format === 'txt' && o.txtLines ? txtLinesTable(path, bytes) : parseDataFile(path, bytes, format);
  checkIssues(table.issues, o.skipBadRows);
  return tableExamples(table, o);
}

/**
 * The chat format a table is read in: --data-format, or auto-detected for causal LM data without explicit
 * --text-column / --prompt-column / --response-column (those keep the plain column mapping).
 */
function chatFormatOf(table: { file: string; columns: string[]; rows: Record<string, unknown>[] }, o: DataOptions): ChatFormat | null {
  const setting = o.format ?? 'auto';
  const explicit = o.textColumn !== undefined || o.promptColumn !== undefined || o.responseColumn !== undefined;
  if (o.task === 'SEQ_CLS') {
    if (setting !== 'auto' && setting !== 'text') throw usage(`--data-format ${setting} is for causal_lm training; seq_cls reads a text and a label column`);
    return null;
  }
  if (setting === 'auto' && (explicit || table.columns.includes('input_ids'))) return null;
  return resolveFormat(setting, table.columns, table.file, table.rows[0]);
}

/** Maps a parsed table (a file, or rows from the Hub) to raw examples. */
export function tableExamples(
  table: DataTable | (Omit<DataTable, 'rows' | 'format'> & { rows: Record<string, unknown>[]; where?: (i: number) => string }), o: DataOptions,
): RawExample[] {
  const path = table.file;
  const chat = chatFormatOf(table, o);
  if (chat) {
    const where = 'where' in table ? table.where : undefined;
    const out = table.rows.map((row, i): RawExample => ({ file: path, line: table.lines[i], row, chat, ...(where ? { where: where(i) } : {}) }));
    if (!out.length) throw new EngineError('BAD_DATA', `${path}: no usable rows`);
    for (const w of dataWarnings(path, out.length)) note(`warning: ${w}`);
    return out;
  }
  const rows = table.rows.map(stringCells);
  const cols = table.columns;
  const need = (c: string, flagName: string) => {
    if (!cols.includes(c)) {
      throw new EngineError('BAD_DATA', `${path}: no column ${quoteValue(c)}; columns are ${listNames(cols)} (choose one with --${flagName})`);
    }
    return c;
  };
  const seqCls = o.task === 'SEQ_CLS';
  const explicitText = o.textColumn !== undefined || o.promptColumn !== undefined || o.responseColumn !== undefined;
  const kind =
    cols.includes('input_ids') && !explicitText ? 'ids'
      : !seqCls && (o.promptColumn !== undefined || o.responseColumn !== undefined || (!o.textColumn && cols.includes('prompt') && cols.includes('response'))) ? 'pr'
        : 'text';
  const textCol = kind === 'text' ? need(o.textColumn ?? 'text', 'text-column') : '';
  const promptCol = kind === 'pr' ? need(o.promptColumn ?? 'prompt', 'prompt-column') : '';
  const responseCol = kind === 'pr' ? need(o.responseColumn ?? 'response', 'response-column') : '';
  const labelCol = seqCls ? need(o.labelColumn ?? 'label', 'label-column') : '';
  if (!seqCls && o.labelColumn !== undefined) note('note: --label-column is ignored for causal_lm');

  const issues: DataIssue[] = [];
  const out: RawExample[] = [];
  rows.forEach((row, i) => {
    const line = table.lines[i];
    const issue = (message: string) => issues.push({ file: path, line, message });
    const ex: RawExample = { file: path, line };
    if (kind === 'ids') {
      const ids = parseIds(row.input_ids ?? '');
      if (typeof ids === 'string') return void issue(ids);
      ex.inputIds = ids;
    } else if (kind === 'pr') {
      if ((row[promptCol] ?? '') === '') return void issue(`column "${promptCol}" is empty`);
      ex.prompt = row[promptCol];
      ex.response = row[responseCol] ?? '';
    } else {
      if ((row[textCol] ?? '').trim() === '') return void issue(`column "${textCol}" is empty`);
      ex.text = row[textCol];
    }
    if (seqCls) {
      const l = (row[labelCol] ?? '').trim();
      if (l === '') return void issue(`column "${labelCol}" is empty (classification needs a label on every row)`);
      ex.label = l;
    }
    out.push(ex);
  });
  checkIssues(issues, o.skipBadRows);
  if (!out.length) throw new EngineError('BAD_DATA', `${path}: no usable rows`);
  for (const w of dataWarnings(path, out.length)) note(`warning: ${w}`);
  return out;
}

/** A row's cells as text (a Hub split's Parquet values; a file's cells are text already). */
export function stringCells(r: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' ? v : v == null ? '' : cellText(v)]));
}

/** A non-string cell (Parquet numbers, lists, structs) as text: numbers as written, the rest as JSON. */
function cellText(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x)) ?? '';
  } catch {
    return String(v);
  }
}

/** Label names in id order: non-negative integer labels are class indices as written; other labels sort. */
export function labelIds(rows: RawExample[]): string[] {
  const values = [...new Set(rows.map((r) => r.label!))];
  if (values.every((v) => /^\d+$/.test(v))) {
    const max = Math.max(...values.map(Number));
    return Array.from({ length: max + 1 }, (_, i) => String(i));
  }
  return values.sort();
}

/** Engine examples, with labels mapped to ids (a label outside `names` is an error naming its line). */
export function toEngineExamples(rows: RawExample[], names: string[] | null): Example[] {
  const index = new Map((names ?? []).map((n, i) => [n, i]));
  return rows.map((r) => {
    const ex: Example = {};
    if (r.inputIds) ex.inputIds = r.inputIds;
    if (r.labels) ex.labels = r.labels;
    if (r.text !== undefined) ex.text = r.text;
    if (r.target !== undefined) ex.target = r.target;
    if (r.prompt !== undefined) (ex.prompt = r.prompt), (ex.response = r.response);
    if (names) {
      const id = index.get(/^\d+$/.test(r.label!) ? String(Number(r.label)) : r.label!);
      if (id === undefined) {
        throw fail({ file: r.file, line: r.line, message: `label ${quoteValue(r.label)} is not one of the training labels (${listNames(names)})` });
      }
      ex.label = id;
    }
    return ex;
  });
}

/** Checks what the engine would reject later, but with the file and line: text without a tokenizer, ids out of vocabulary. */
export function checkAgainstModel(rows: RawExample[], vocabSize: number, hasTokenizer: boolean, modelDir: string): void {
  for (const r of rows) {
    if (r.chat && !hasTokenizer) {
      throw fail({ file: r.file, line: r.line, message: `${r.chat} data is text but ${modelDir} has no tokenizer.json; give --tokenizer DIR` });
    }
    if (!r.inputIds && !r.chat && !hasTokenizer) {
      throw fail({
        file: r.file, line: r.line,
        message: `the data is text but ${modelDir} has no tokenizer.json; give pre-tokenized {"input_ids": [...]} rows or --tokenizer DIR`,
      });
    }
    const oob = r.inputIds?.find((t) => t >= vocabSize);
    if (oob !== undefined) {
      throw fail({ file: r.file, line: r.line, message: `token id ${oob} is outside the model's vocabulary of ${vocabSize}` });
    }
  }
}

/** Finds the first row whose tokenization is empty or leaves the vocabulary, and throws naming its line. */
export function locateTokenizedProblem(rows: RawExample[], tok: { encode(s: string): number[] }, vocabSize: number): void {
  for (const r of rows) {
    if (r.inputIds) continue;
    const ids = r.prompt !== undefined ? [...tok.encode(r.prompt), ...tok.encode(r.response ?? '')]
      : r.target !== undefined ? [...tok.encode(r.text ?? ''), ...tok.encode(r.target)] : tok.encode(r.text ?? '');
    if (!ids.length) throw fail({ file: r.file, line: r.line, message: 'the text is empty after tokenization' });
    const oob = ids.find((t) => t >= vocabSize);
    if (oob !== undefined) {
      throw fail({ file: r.file, line: r.line, message: `the tokenizer gives id ${oob}, outside the model's vocabulary of ${vocabSize}; use the model's own tokenizer` });
    }
  }
}

/**
 * Dataset files -> rows -> training examples, framework-free (runs in the worker, Node and tests).
 *
 * CSV goes through papaparse, JSONL is read line by line, TXT is split into paragraphs at blank lines.
 * Every problem is a DataIssue naming the file and the 1-based line (CSV also gives the data row), so the
 * person can open the file and fix it. Bad rows are skipped and reported; a file with no usable rows, or a
 * mapping onto missing columns, is a BAD_DATA EngineError.
 */
import Papa from 'papaparse';
import { EngineError } from '../errors';
import { checkDecodedText, decodeText } from '../io/text';
import { describeValue, listNames, quoteValue } from '../quote';
import type { TaskType } from '../models/types';

export type DataFormat = 'csv' | 'jsonl' | 'txt';

/** One problem in a data file, located by line (and CSV data row when there is one). */
export interface DataIssue {
  file: string;
  line: number;
  row?: number;
  message: string;
}

/** A parsed file: string cells by column, each row remembering the line it started on. */
export interface DataTable {
  file: string;
  format: DataFormat;
  columns: string[];
  rows: Record<string, string>[];
  /** 1-based line where rows[i] starts. */
  lines: number[];
  issues: DataIssue[];
}

/** Which columns feed the model: plain text, text + class label, or prompt + response (instruction data). */
export type ColumnMapping =
  | { kind: 'text'; text: string }
  | { kind: 'text-label'; text: string; label: string }
  | { kind: 'prompt-response'; prompt: string; response: string };

/** One training example, as TrainingSession takes it. */
export interface Example {
  text?: string;
  prompt?: string;
  response?: string;
  label?: number;
  /** Pre-tokenized instruction / chat rows (chat-encode.ts): ids and CLM labels, -100 where not trained on. */
  inputIds?: number[];
  labels?: number[];
  /** Line in the source file, for messages. */
  line?: number;
}

export function issueText(i: DataIssue): string {
  return `${i.file} line ${i.line}${i.row !== undefined ? ` (row ${i.row})` : ''}: ${i.message}`;
}

/** The format a file name implies; anything else is BAD_DATA. */
export function detectFormat(file: string): DataFormat {
  const ext = file.toLowerCase().split('.').pop();
  if (ext === 'csv' || ext === 'tsv') return 'csv';
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl';
  if (ext === 'txt' || ext === 'md') return 'txt';
  throw new EngineError('BAD_DATA', `${file}: unsupported file type; use .csv, .jsonl or .txt`);
}

/**
 * A data file's content as text. Bytes are decoded strictly (decodeText); text that was already decoded (File.text()
 * in the worker, Response.text()) is checked for the traces a UTF-16, binary or non-UTF-8 file leaves
 * (checkDecodedText). Either way a UTF-8 byte-order mark is dropped and the error names the file.
 */
export function dataText(file: string, content: string | Uint8Array | ArrayBuffer): string {
  return typeof content === 'string' ? checkDecodedText(content, file, 'BAD_DATA') : decodeText(content, file, 'BAD_DATA');
}

/** Parses a data file of any supported format, from its bytes or its text (see dataText). */
export function parseDataFile(file: string, content: string | Uint8Array | ArrayBuffer, format: DataFormat = detectFormat(file)): DataTable {
  const text = dataText(file, content);
  const table = format === 'csv' ? parseCsv(file, text) : format === 'jsonl' ? parseJsonl(file, text) : parseTxt(file, text);
  if (table.rows.length === 0) {
    const first = table.issues[0];
    throw new EngineError('BAD_DATA', first ? `${issueText(first)} (no usable rows)` : `${file}: no rows found; the file is empty`);
  }
  return table;
}

/** Line-start offsets, so a character offset maps to a 1-based line number by binary search. */
function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** CSV with a header row. Rows whose field count differs from the header's are reported, not guessed at. */
export function parseCsv(file: string, text: string): DataTable {
  const lineOf = lineIndex(text);
  const table: DataTable = { file, format: 'csv', columns: [], rows: [], lines: [], issues: [] };
  let start = 0;
  let index = -1; // -1 is the header row
  Papa.parse<string[]>(text, {
    header: false,
    skipEmptyLines: 'greedy',
    delimiter: file.toLowerCase().endsWith('.tsv') ? '\t' : '',
    step: (res) => {
      // meta.cursor is the offset just past this row; skip the newline(s) that ended the previous one.
      while (start < text.length && (text[start] === '\n' || text[start] === '\r')) start++;
      const line = lineOf(start);
      start = res.meta.cursor;
      const cells = res.data;
      if (index === -1) {
        index = 0;
        table.columns = cells.map((c, i) => c.trim() || `column_${i + 1}`);
        const dup = table.columns.find((c, i) => table.columns.indexOf(c) !== i);
        if (dup) table.issues.push({ file, line, message: `header names column ${quoteValue(dup)} twice` });
        return;
      }
      index++;
      const err = res.errors[0];
      if (err) {
        table.issues.push({ file, line, row: index, message: csvMessage(err) });
      } else if (cells.length !== table.columns.length) {
        table.issues.push({
          file, line, row: index,
          message: `expected ${table.columns.length} fields (${listNames(table.columns)}), found ${cells.length}`,
        });
      } else {
        const row: Record<string, string> = {};
        table.columns.forEach((c, i) => (row[c] = cells[i]));
        table.rows.push(row);
        table.lines.push(line);
      }
    },
  });
  if (index === -1) throw new EngineError('BAD_DATA', `${file}: the file is empty; a CSV needs a header row`);
  return table;
}

function csvMessage(err: Papa.ParseError): string {
  switch (err.code) {
    case 'MissingQuotes':
      return 'a quoted field is never closed (missing ")';
    case 'InvalidQuotes':
      return 'a quote inside a field is not escaped (write "" inside quoted fields)';
    default:
      return err.message;
  }
}

/** JSON Lines: one JSON object per non-empty line. Non-string values become their JSON text. */
export function parseJsonl(file: string, text: string): DataTable {
  const table: DataTable = { file, format: 'jsonl', columns: [], rows: [], lines: [], issues: [] };
  const seen = new Set<string>();
  // Lines end in \n, \r\n or a lone \r (a raw CR cannot occur inside a JSON string, so this never splits a row).
  const lines = text.split(/\r\n|\r|\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const s = raw.trim();
    if (!s) return;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      const why = e instanceof RangeError ? 'nested too deeply to read' : (e as Error).message;
      table.issues.push({ file, line, message: `invalid JSON (${why})` });
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      table.issues.push({ file, line, message: `expected a JSON object like {"text": "..."}, got ${describeValue(v)}` });
      return;
    }
    const row: Record<string, string> = {};
    let deep: string | null = null;
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (!seen.has(k)) (seen.add(k), table.columns.push(k));
      try {
        row[k] = typeof val === 'string' ? val : val === null || val === undefined ? '' : JSON.stringify(val);
      } catch {
        deep = k; // JSON.stringify overflows the stack on a value nested thousands of levels deep
        break;
      }
    }
    if (deep !== null) {
      table.issues.push({ file, line, message: `the value of ${quoteValue(deep)} is nested too deeply to use (${quoteValue((v as Record<string, unknown>)[deep], 40)})` });
      return;
    }
    table.rows.push(row);
    table.lines.push(line);
  });
  return table;
}

/** Plain text: each paragraph (separated by blank lines) is one example in column "text". */
export function parseTxt(file: string, text: string): DataTable {
  const table: DataTable = { file, format: 'txt', columns: ['text'], rows: [], lines: [], issues: [] };
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let buf: string[] = [];
  let startLine = 0;
  const flush = () => {
    if (buf.length) table.rows.push({ text: buf.join('\n') }), table.lines.push(startLine);
    buf = [];
  };
  lines.forEach((l, i) => {
    if (l.trim() === '') return flush();
    if (!buf.length) startLine = i + 1;
    buf.push(l);
  });
  flush();
  return table;
}

const TEXT_NAMES = ['text', 'sentence', 'content', 'body', 'message', 'review', 'document', 'input'];
const LABEL_NAMES = ['label', 'labels', 'class', 'category', 'target', 'y'];
const PROMPT_NAMES = ['prompt', 'instruction', 'question', 'input', 'query'];
const RESPONSE_NAMES = ['response', 'completion', 'output', 'answer', 'target'];

function pick(columns: string[], names: string[], not?: string): string | undefined {
  const lower = columns.map((c) => c.toLowerCase());
  for (const n of names) {
    const i = lower.indexOf(n);
    if (i >= 0 && columns[i] !== not) return columns[i];
  }
  return undefined;
}

/** A sensible first mapping from column names (the person can change it). */
export function guessMapping(columns: string[], task: TaskType): ColumnMapping {
  const prompt = pick(columns, PROMPT_NAMES);
  const response = pick(columns, RESPONSE_NAMES, prompt);
  const text = pick(columns, TEXT_NAMES) ?? columns.find((c) => c !== prompt && c !== response) ?? columns[0];
  const label = pick(columns, LABEL_NAMES, text) ?? columns.find((c) => c !== text);
  if (task === 'SEQ_CLS' && label) return { kind: 'text-label', text, label };
  if (task === 'CAUSAL_LM' && prompt && response && !pick(columns, ['text'])) return { kind: 'prompt-response', prompt, response };
  return { kind: 'text', text };
}

/**
 * Label names in id order: integer-like labels keep their numeric order (so "0","1" stay ids 0 and 1),
 * anything else is sorted, as datasets' ClassLabel does for string labels.
 */
export function labelNames(values: string[]): string[] {
  const uniq = [...new Set(values.map((v) => v.trim()))];
  if (uniq.every((v) => /^-?\d+$/.test(v))) return uniq.sort((a, b) => Number(a) - Number(b));
  return uniq.sort();
}

/**
 * Applies a column mapping. Rows with an empty mapped cell are reported and skipped. `knownLabels` fixes the
 * label ids (so a validation file uses the training file's ids); a value outside it is reported per row.
 */
export function toExamples(
  table: DataTable, mapping: ColumnMapping, knownLabels?: string[],
): { examples: Example[]; labels: string[]; issues: DataIssue[]; warnings: string[] } {
  const needed = mapping.kind === 'text' ? [mapping.text] : mapping.kind === 'text-label' ? [mapping.text, mapping.label] : [mapping.prompt, mapping.response];
  for (const c of needed) {
    if (!table.columns.includes(c)) {
      throw new EngineError('BAD_DATA', `${table.file}: no column ${quoteValue(c)}; columns are ${listNames(table.columns)}`);
    }
  }
  const issues: DataIssue[] = [];
  const examples: Example[] = [];
  const labels =
    mapping.kind !== 'text-label' ? [] : knownLabels ?? labelNames(table.rows.map((r) => r[mapping.label] ?? '').filter((v) => v.trim() !== ''));
  table.rows.forEach((row, i) => {
    const line = table.lines[i];
    const empty = needed.find((c) => (row[c] ?? '').trim() === '');
    if (empty) {
      issues.push({ file: table.file, line, message: `column ${quoteValue(empty)} is empty` });
      return;
    }
    if (mapping.kind === 'text') examples.push({ text: row[mapping.text], line });
    else if (mapping.kind === 'prompt-response') examples.push({ prompt: row[mapping.prompt], response: row[mapping.response], line });
    else {
      const label = labels.indexOf(row[mapping.label].trim());
      if (label < 0) issues.push({ file: table.file, line, message: `label ${quoteValue(row[mapping.label].trim())} is not one of ${listNames(labels)}` });
      else examples.push({ text: row[mapping.text], label, line });
    }
  });
  if (examples.length === 0) {
    throw new EngineError('BAD_DATA', `${table.file}: no row has a value in ${needed.map((c) => quoteValue(c)).join(' and ')}`);
  }
  if (mapping.kind === 'text-label' && labels.length < 2) {
    throw new EngineError('BAD_DATA', `${table.file}: column ${quoteValue(mapping.label)} has ${labels.length} distinct label(s); classification needs at least 2`);
  }
  return { examples, labels, issues, warnings: dataWarnings(table.file, examples.length) };
}

/** Fewer usable rows than this is worth a warning: a run memorises them or learns nothing that generalises. */
export const FEW_ROWS = 3;

/**
 * Warnings about data that can be trained on but probably should not be (today: a file with only 1 or 2 usable
 * rows). toExamples returns them; the CLI prints them as "warning: ..." lines.
 */
export function dataWarnings(file: string, usableRows: number): string[] {
  if (usableRows >= FEW_ROWS) return [];
  return [`${file} has only ${usableRows} usable row${usableRows === 1 ? '' : 's'}: far too few to fine-tune on (the model will just memorise ${usableRows === 1 ? 'it' : 'them'}); add more examples`];
}

/**
 * Class labels that do not fit a head whose size is fixed (a --num-labels flag, or config.json's num_labels /
 * id2label): an error naming the label, where it is, and both counts. `labels` are in id order.
 */
export function checkLabelsFit(labels: string[], numLabels: number, where: string, fixedBy: string): void {
  if (labels.length <= numLabels) return;
  const first = labels[numLabels];
  throw new EngineError(
    'BAD_DATA',
    `${where}: label ${quoteValue(first)} is class ${numLabels + 1} of ${labels.length} (${listNames(labels)}) but ${fixedBy} fixes the model to ${numLabels} classes; ` +
      `use data with at most ${numLabels} labels, or change ${fixedBy}`,
  );
}

/**
 * Deterministic shuffle-and-split: a fraction of examples (at least one when fraction > 0 and there are two
 * or more) becomes the validation set. The same seed gives the same split.
 */
export function splitValidation<T>(examples: T[], fraction: number, seed: number): { train: T[]; validation: T[] } {
  if (!(fraction > 0) || examples.length < 2) return { train: examples.slice(), validation: [] };
  const order = examples.map((_, i) => i);
  let s = (seed >>> 0) || 1;
  const next = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 4294967296);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const n = Math.min(examples.length - 1, Math.max(1, Math.round(examples.length * Math.min(fraction, 0.9))));
  return { validation: order.slice(0, n).map((i) => examples[i]), train: order.slice(n).map((i) => examples[i]) };
}

export interface TokenStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  /** Examples longer than maxLength, i.e. the ones truncation cuts. */
  truncated: number;
  maxLength: number;
}

/** The text an example contributes to the model's input, for length statistics. */
export function exampleText(e: Example): string {
  return e.prompt !== undefined ? `${e.prompt}${e.response ?? ''}` : (e.text ?? '');
}

/** Token-length statistics and how many examples exceed maxLength. `sample` caps the work on big files. */
export function tokenStats(examples: Example[], encode: (text: string) => number[], maxLength: number, sample = 2000): TokenStats {
  const step = Math.max(1, Math.ceil(examples.length / sample));
  const lens: number[] = [];
  for (let i = 0; i < examples.length; i += step) lens.push(encode(exampleText(examples[i])).length);
  lens.sort((a, b) => a - b);
  const n = lens.length;
  const q = (p: number) => (n ? lens[Math.min(n - 1, Math.floor(p * (n - 1) + 0.5))] : 0);
  const over = lens.filter((l) => l > maxLength).length;
  return {
    count: examples.length,
    min: n ? lens[0] : 0,
    max: n ? lens[n - 1] : 0,
    mean: n ? lens.reduce((a, b) => a + b, 0) / n : 0,
    p50: q(0.5),
    p95: q(0.95),
    truncated: step === 1 ? over : Math.round((over / Math.max(1, n)) * examples.length),
    maxLength,
  };
}

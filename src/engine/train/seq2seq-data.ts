/**
 * SEQ_2_SEQ_LM data from a parsed CSV / JSONL table (data-parse.ts): a source and a target text column
 * (default "source" / "target", also "input" / "output" and "document" / "summary" when those are the columns), or
 * pre-tokenized rows {"input_ids": [...], "labels": [...]} (the target ids, -100 where not scored). Pure data,
 * shared by the CLI and the studio; tokenization happens in data.ts (encodeExamples).
 */
import { quoteValue } from '../quote';
import type { DataIssue, DataTable } from './data-parse';
import { IGNORE_INDEX } from './loss';

export interface Seq2SeqRow {
  line: number;
  source?: string;
  target?: string;
  inputIds?: number[];
  labels?: number[];
}

export interface Seq2SeqColumns {
  sourceColumn?: string;
  targetColumn?: string;
}

/** Source / target column pairs tried, in order, when no column is named. */
const PAIRS: [string, string][] = [['source', 'target'], ['input', 'output'], ['document', 'summary'], ['text', 'target'], ['text', 'summary']];

/** The source and target columns of a table: the named ones, else the first pair of PAIRS present; null for pre-tokenized. */
export function seq2seqColumns(columns: string[], o: Seq2SeqColumns): { source: string; target: string } | null | string {
  if (o.sourceColumn === undefined && o.targetColumn === undefined && columns.includes('input_ids')) return null;
  const pair = PAIRS.find(([s, t]) => columns.includes(s) && columns.includes(t));
  const source = o.sourceColumn ?? (o.targetColumn === undefined ? pair?.[0] : undefined) ?? 'source';
  const target = o.targetColumn ?? (o.sourceColumn === undefined ? pair?.[1] : undefined) ?? 'target';
  for (const [c, flag] of [[source, 'source-column'], [target, 'target-column']]) {
    if (!columns.includes(c)) {
      return `no column ${quoteValue(c)}; columns are ${columns.map((x) => quoteValue(x)).join(', ') || 'none'} (choose the ${flag === 'source-column' ? 'source' : 'target'} with --${flag})`;
    }
  }
  return { source, target };
}

/** A JSON list of token ids in a cell, or what is wrong with it. */
function idList(cell: string | undefined, key: string, allowIgnore: boolean): number[] | string {
  let v: unknown;
  try {
    v = JSON.parse(cell ?? '');
  } catch {
    return `${key} must be a JSON list of token ids, got ${quoteValue(cell ?? '', 40)}`;
  }
  if (!Array.isArray(v) || !v.length) return `${key} must be a non-empty list of token ids`;
  const bad = v.find((t) => !(typeof t === 'number' && Number.isInteger(t) && (t >= 0 || (allowIgnore && t === IGNORE_INDEX))));
  if (bad !== undefined) return `${key} must hold non-negative integers${allowIgnore ? ` (or ${IGNORE_INDEX})` : ''}, found ${quoteValue(bad)}`;
  return v as number[];
}

/**
 * The rows of a table as seq2seq examples; a row with an empty source or target, or bad ids, is an issue naming
 * its line. A missing column is one issue for the whole file (line 1).
 */
export function seq2seqRows(table: Pick<DataTable, 'file' | 'columns' | 'rows' | 'lines'>, o: Seq2SeqColumns = {}): { rows: Seq2SeqRow[]; issues: DataIssue[] } {
  const cols = seq2seqColumns(table.columns, o);
  const issues: DataIssue[] = [];
  const rows: Seq2SeqRow[] = [];
  if (typeof cols === 'string') return { rows, issues: [{ file: table.file, line: 1, message: cols }] };
  table.rows.forEach((r, i) => {
    const line = table.lines[i];
    const issue = (message: string) => issues.push({ file: table.file, line, message });
    if (cols === null) {
      const ids = idList(r.input_ids, 'input_ids', false);
      if (typeof ids === 'string') return void issue(ids);
      if (r.labels === undefined || r.labels === '') return void issue('pre-tokenized seq2seq rows need "labels": the target token ids');
      const labels = idList(r.labels, 'labels', true);
      if (typeof labels === 'string') return void issue(labels);
      return void rows.push({ line, inputIds: ids, labels });
    }
    const source = r[cols.source] ?? '';
    const target = r[cols.target] ?? '';
    if (source.trim() === '') return void issue(`column "${cols.source}" (the source) is empty`);
    if (target.trim() === '') return void issue(`column "${cols.target}" (the target) is empty`);
    rows.push({ line, source, target });
  });
  return { rows, issues };
}

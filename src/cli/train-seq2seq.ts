/**
 * `train --task seq_2_seq_lm` data: CSV / JSONL with a source and a target column (--source-column,
 * --target-column; default source / target, input / output or document / summary), or pre-tokenized JSONL rows
 * {"input_ids": [...], "labels": [...]}, or a Hub dataset's split with such columns (train-hub.ts), read by the
 * engine's seq2seq-data (shared with the studio). Text is
 * tokenized by the session with the tokenizer's special tokens (T5 adds </s> to source and target).
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors';
import { issueText, parseDataFile, type DataIssue, type DataTable } from '../engine/train/data-parse';
import { seq2seqRows } from '../engine/train/seq2seq-data';
import { note, requireFile, type CommandSpec } from './common';
import type { RawExample } from './train-data';

export const SEQ2SEQ_OPTIONS: CommandSpec['options'] = {
  'source-column': { kind: 'value', arg: 'NAME', help: 'seq_2_seq_lm: column with the source text (default "source", or "input" / "document").' },
  'target-column': { kind: 'value', arg: 'NAME', help: 'seq_2_seq_lm: column with the target text (default "target", or "output" / "summary").' },
  'max-target-length': { kind: 'value', arg: 'N', help: 'seq_2_seq_lm: most target tokens (default --max-length).' },
  'generation-eval-rows': {
    kind: 'value', arg: 'N',
    help: 'seq_2_seq_lm: score greedy generation (exact match, chrF, ROUGE-L) on the first N validation rows, the loss on all (default all; the studio uses 64).',
  },
};

export interface Seq2SeqReadOptions {
  sourceColumn?: string;
  targetColumn?: string;
  skipBadRows?: boolean;
}

/** Reads a seq2seq file into raw examples (text = source, target; or input_ids + labels). */
export function readSeq2SeqFile(path: string, o: Seq2SeqReadOptions): RawExample[] {
  requireFile(path, 'data file');
  return seq2seqExamples(parseDataFile(path, readFileSync(path)), o);
}

/**
 * A parsed table's rows as seq2seq examples: a file's, or a Hub split's (its cells as text, `lines` = row numbers).
 * A missing column stops the run; bad rows stop it too unless --skip-bad-rows.
 */
export function seq2seqExamples(table: Pick<DataTable, 'file' | 'columns' | 'rows' | 'lines'> & { issues?: DataIssue[] }, o: Seq2SeqReadOptions): RawExample[] {
  const { rows, issues } = seq2seqRows(table, o);
  const all = [...(table.issues ?? []), ...issues];
  const whole = issues.length === 1 && rows.length === 0 && table.rows.length > 0;
  if (all.length && (!o.skipBadRows || whole)) {
    const more = all.length > 1 ? ` (and ${all.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${issueText(all[0])}${more}`);
  }
  for (const i of all.slice(0, 20)) note(`warning: skipped ${issueText(i)}`);
  if (!rows.length) throw new EngineError('BAD_DATA', `${table.file}: no usable rows`);
  return rows.map((r) => ({
    file: table.file, line: r.line,
    ...(r.inputIds ? { inputIds: r.inputIds, labels: r.labels } : { text: r.source, target: r.target }),
  }));
}

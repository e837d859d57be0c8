/**
 * `train --data hub:owner/name[:config][@revision] --split train --validation-split-name test --max-rows N`: a Hub
 * dataset through the same HubClient as models (HF_ENDPOINT, HF_TOKEN). Configs, splits and row counts are listed
 * first (Parquet footers only), then the first --max-rows rows of each split are read.
 */
import { EngineError } from '../engine/errors';
import { HubClient } from '../engine/io/hub';
import { formatDatasetRef, HubDataset, parseDatasetId } from '../engine/io/hub-dataset';
import { datasetClassLabels, hubTokenClsRows, tokenClsColumns } from '../engine/io/hub-tokcls';
import { issueText, type DataIssue } from '../engine/train/data-parse';
import { hubSettingsFromEnv } from '../engine/io/node-source';
import { int, note, str, usage, type CommandSpec, type Parsed } from './common';
import { stringCells, tableExamples, type DataOptions, type RawExample } from './train-data';
import { seq2seqExamples, type Seq2SeqReadOptions } from './train-seq2seq';

export const HUB_DATA_OPTIONS: CommandSpec['options'] = {
  split: { kind: 'value', arg: 'NAME', help: 'With --data hub:ID: the training split (default train).' },
  'validation-split-name': { kind: 'value', arg: 'NAME', help: 'With --data hub:ID: the split to evaluate on (e.g. validation or test).' },
  'max-rows': { kind: 'value', arg: 'N', help: 'With --data hub:ID: use only the first N rows of each split (Parquet is read only that far).' },
};

/** Whether a --data argument names a Hub dataset. */
export const isHubData = (arg: string) => arg.startsWith('hub:');

export interface HubData {
  train: RawExample[];
  validation: RawExample[] | null;
  /** token_cls: the tags column's ClassLabel names from the dataset's features (null: none). */
  tagNames?: string[] | null;
  /** How messages name the dataset (owner/name:config). */
  dataset?: string;
}

/**
 * Lists the dataset, prints its splits and row counts, and reads the splits the run uses. seq_2_seq_lm reads the
 * source and target columns (`s2s`; by default source / target, input / output or document / summary).
 */
export async function readHubData(arg: string, p: Parsed, o: DataOptions, s2s: Seq2SeqReadOptions = {}): Promise<HubData> {
  const ref = parseDatasetId(arg);
  const maxRows = int(p, 'max-rows');
  if (maxRows !== undefined && maxRows < 1) throw usage('--max-rows must be >= 1');
  const trainSplit = str(p, 'split') ?? 'train';
  const validSplit = str(p, 'validation-split-name');
  if (validSplit === trainSplit) throw usage(`--validation-split-name ${validSplit} is the training split too; choose another split`);
  const { endpoint, token } = hubSettingsFromEnv();
  const d = new HubDataset(new HubClient({ endpoint, token }), ref);
  const listing = await d.list();
  const config = await d.config();
  const counts = await Promise.all(config.splits.map(async (s) => {
    const c = await d.rowCounts(s);
    return `${s.name} ${c.every((x) => x !== null) ? `${(c as number[]).reduce((a, b) => a + b, 0)} rows` : `${s.files.length} file(s)`}`;
  }));
  note(`${formatDatasetRef(ref)} (config ${config.name}, ${listing.source === 'parquet-conversion' ? "the Hub's Parquet conversion" : "the repo's files"}): ${counts.join(', ')}`);
  const dataset = formatDatasetRef({ ...ref, config: config.name });
  // token_cls: the tag names from the features of the training split (its Parquet footer, else the README).
  let tagNames: string[] | null = null;
  let tagsColumn: string | undefined;
  const tokcls = o.task === 'TOKEN_CLS';
  const issues: DataIssue[] = [];
  const read = async (name: string): Promise<RawExample[]> => {
    const split = await d.split(name, config.name);
    const { columns, rows } = await d.rows(split, { maxRows });
    if (!rows.length) throw new EngineError('BAD_DATA', `Dataset ${ref.repo} (config ${config.name}) split ${name} has no rows.`);
    const label = `${ref.repo} ${name}`;
    const where = (i: number) => `${label} row ${i + 1}`;
    if (tokcls) {
      const cols = tokenClsColumns(label, columns, { tokensColumn: o.textColumn, tagsColumn: o.labelColumn }, '--text-column (words) and --label-column (tags)');
      if (tagsColumn === undefined) {
        tagsColumn = cols.tags;
        const found = await datasetClassLabels(d, split, config.name);
        tagNames = found?.labels[cols.tags] ?? null;
        if (tagNames) note(`tags of ${cols.tags} from the dataset's features (${found!.source === 'readme' ? "the README's dataset_info" : 'the Parquet metadata'}): ${tagNames.join(', ')}`);
      }
      // With --label-list the ids are checked against that list when the rows are encoded.
      const r = hubTokenClsRows({ file: label, rows, where }, cols, p.opts.has('label-list') ? null : tagNames);
      issues.push(...r.issues);
      return r.rows;
    }
    if (o.task === 'SEQ_2_SEQ_LM') {
      return seq2seqExamples({ file: label, columns, rows: rows.map(stringCells), lines: rows.map((_, i) => i + 1) }, { ...s2s, skipBadRows: o.skipBadRows });
    }
    return tableExamples({ file: label, columns, rows, lines: rows.map((_, i) => i + 1), issues: [], where }, o);
  };
  const train = await read(trainSplit);
  const validation = validSplit !== undefined ? await read(validSplit) : null;
  if (issues.length && !o.skipBadRows) {
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${issueText(issues[0])}${more}`);
  }
  for (const i of issues.slice(0, 20)) note(`warning: skipped ${issueText(i)}`);
  if (tokcls && !train.length) throw new EngineError('BAD_DATA', `${dataset} ${trainSplit}: no usable rows`);
  if (maxRows !== undefined) note(`using the first ${maxRows} rows of each split`);
  return { train, validation, tagNames, dataset };
}

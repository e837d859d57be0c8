/**
 * `train --data hub:owner/name[:config][@revision] --split train --validation-split-name test --max-rows N`: a Hub
 * dataset through the same HubClient as models (HF_ENDPOINT, HF_TOKEN). Configs, splits and row counts are listed
 * first (Parquet footers only), then the first --max-rows rows of each split are read.
 */
import { EngineError } from '../engine/errors';
import { HubClient } from '../engine/io/hub';
import { formatDatasetRef, HubDataset, parseDatasetId } from '../engine/io/hub-dataset';
import { hubSettingsFromEnv } from '../engine/io/node-source';
import { int, note, str, usage, type CommandSpec, type Parsed } from './common';
import { tableExamples, type DataOptions, type RawExample } from './train-data';

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
}

/** Lists the dataset, prints its splits and row counts, and reads the splits the run uses. */
export async function readHubData(arg: string, p: Parsed, o: DataOptions): Promise<HubData> {
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
  const read = async (name: string): Promise<RawExample[]> => {
    const split = await d.split(name, config.name);
    const { columns, rows } = await d.rows(split, { maxRows });
    if (!rows.length) throw new EngineError('BAD_DATA', `Dataset ${ref.repo} (config ${config.name}) split ${name} has no rows.`);
    const label = `${ref.repo} ${name}`;
    return tableExamples({ file: label, columns, rows, lines: rows.map((_, i) => i + 1), issues: [], where: (i) => `${label} row ${i + 1}` }, o);
  };
  const train = await read(trainSplit);
  const validation = validSplit !== undefined ? await read(validSplit) : null;
  if (maxRows !== undefined) note(`using the first ${maxRows} rows of each split`);
  return { train, validation };
}

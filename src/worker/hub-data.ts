/**
 * A Hub dataset for the studio: the configs and splits with row counts (Parquet footers only), then the first
 * `maxRows` rows of the training split (and of a validation split, when one is named), as tables the data loader
 * maps like an upload.
 */
import { HubClient } from '../engine/io/hub';
import { formatDatasetRef, HubDataset, parseDatasetId } from '../engine/io/hub-dataset';
import { datasetClassLabels, hubTokenClsRows, tokenClsColumns, type DatasetClassLabels } from '../engine/io/hub-tokcls';
import type { DataIssue, DataTable } from '../engine/train/data-parse';
import type { TokenClsRow } from '../engine/train/tokcls-data';

/** What the Data panel's "From the Hub" field sends. */
export interface HubDataSpec {
  /** owner/name[:config][@revision] */
  id: string;
  split: string;
  /** A second split to evaluate on; absent: hold out the validation fraction. */
  validationSplit?: string;
  /** Rows read from each split (Parquet is read only that far). */
  maxRows: number;
  /** TOKEN_CLS: the words and tags columns (default: tokens / words, ner_tags / tags / labels). */
  tokensColumn?: string;
  tagsColumn?: string;
  endpoint?: string;
  token?: string | null;
}

/** What the page shows about the dataset: where it came from, its configs and splits with row counts. */
export interface HubDataInfo {
  id: string;
  config: string;
  source: 'parquet-conversion' | 'repo-files';
  configs: string[];
  splits: { name: string; rows: number | null; files: number }[];
  /** Rows read per split (the first maxRows). */
  maxRows: number;
  /** TOKEN_CLS: the columns read, and where the tag names came from (null: the label list or the data). */
  tokcls?: { tokensColumn: string; tagsColumn: string; namesFrom: DatasetClassLabels['source'] | null };
}

/** A table with row cells as read (Parquet values, not only strings) and how messages name each row. */
export interface HubTable extends Omit<DataTable, 'rows' | 'format'> {
  rows: Record<string, unknown>[];
  where: (i: number) => string;
}

/** Cells as text, for the plain column mapping (numbers as written, lists and structs as JSON). */
export function stringTable(t: HubTable): DataTable {
  const cell = (v: unknown) => (typeof v === 'string' ? v : v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return { ...t, format: 'jsonl', rows: t.rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)]))) };
}

/**
 * TOKEN_CLS rows of a Hub dataset: the words and tags columns as lists (Parquet list columns, not text), the tag
 * names from the dataset's features (null when it names none); bad rows are issues by row.
 */
export async function readHubTokenClsData(spec: HubDataSpec, signal?: AbortSignal): Promise<{
  info: HubDataInfo; train: TokenClsRow[]; validation: TokenClsRow[] | null; tagNames: string[] | null; issues: DataIssue[];
}> {
  const { info, train, validation, dataset } = await readHubData(spec, signal);
  const how = 'the words and tags column fields of "From the Hub"';
  const cols = tokenClsColumns(train.file, train.columns, spec, how);
  const found = await datasetClassLabels(dataset, await dataset.split(spec.split, info.config, signal), info.config, signal);
  const tagNames = found?.labels[cols.tags] ?? null;
  const issues: DataIssue[] = [];
  const rows = (t: HubTable) => {
    const r = hubTokenClsRows(t, t === train ? cols : tokenClsColumns(t.file, t.columns, { tokensColumn: cols.tokens, tagsColumn: cols.tags }, how), tagNames);
    issues.push(...r.issues);
    return r.rows;
  };
  return {
    info: { ...info, tokcls: { tokensColumn: cols.tokens, tagsColumn: cols.tags, namesFrom: tagNames ? found!.source : null } },
    train: rows(train), validation: validation && rows(validation), tagNames, issues,
  };
}

/** Lists the dataset and reads the splits the run uses. */
export async function readHubData(spec: HubDataSpec, signal?: AbortSignal): Promise<{ info: HubDataInfo; train: HubTable; validation: HubTable | null; dataset: HubDataset }> {
  const ref = parseDatasetId(spec.id);
  const d = new HubDataset(new HubClient({ endpoint: spec.endpoint, token: spec.token }), ref);
  const listing = await d.list(signal);
  const config = await d.config(ref.config, signal);
  const splits = await Promise.all(config.splits.map(async (s) => {
    const c = await d.rowCounts(s, signal);
    return { name: s.name, rows: c.every((x) => x !== null) ? (c as number[]).reduce((a, b) => a + b, 0) : null, files: s.files.length };
  }));
  const read = async (name: string): Promise<HubTable> => {
    const { columns, rows } = await d.rows(await d.split(name, config.name, signal), { maxRows: spec.maxRows, signal });
    const label = `${ref.repo} ${name}`;
    return { file: label, columns, rows, lines: rows.map((_, i) => i + 1), issues: [], where: (i) => `${label} row ${i + 1}` };
  };
  const train = await read(spec.split);
  const validation = spec.validationSplit ? await read(spec.validationSplit) : null;
  return {
    info: { id: formatDatasetRef({ ...ref, config: config.name }), config: config.name, source: listing.source, configs: listing.configs.map((c) => c.name), splits, maxRows: spec.maxRows },
    train, validation, dataset: d,
  };
}

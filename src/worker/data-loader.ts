/**
 * Datasets for a run: the built-in ones (public/datasets/index.json) or a file the person uploaded, parsed
 * with the engine's data-parse, mapped to examples, split, and summarised (preview, issues, token lengths).
 */
import { EngineError } from '../engine/errors';
import {
  guessMapping, issueText, labelNames, parseDataFile, splitValidation, toExamples, tokenStats,
  type ColumnMapping, type DataIssue, type DataTable, type Example, type TokenStats,
} from '../engine/train/data-parse';
import type { Tokenizer } from '../engine/tokenizer';
import { allOTagger, classBaselines } from '../engine/train/baselines';
import { encodeExamples } from '../engine/train/data';
import { seq2seqColumns, seq2seqRows } from '../engine/train/seq2seq-data';
import { encodeTokenClsRows, parseTokenClsFile, tagList, tokenClsStats, type TokenClsRow } from '../engine/train/tokcls-data';
import { chatFormatFor, loadChatData } from './chat-data';
import { hubTagList } from '../engine/io/hub-tokcls';
import { readHubData, readHubTokenClsData, stringTable, type HubDataInfo, type HubTable } from './hub-data';
import type { DataRequest, DataSummary, Seq2SeqSummary } from './protocol';
import type { TaskType } from '../engine/models/types';

/** One entry of public/datasets/index.json. */
interface BuiltinDataset {
  id: string;
  name: string;
  task: TaskType;
  files: { train: string; validation?: string };
  textField: string;
  labelField?: string;
  labels?: string[];
  /** SEQ_2_SEQ_LM: the source and target columns. */
  sourceField?: string;
  targetField?: string;
}

export interface LoadedData {
  train: Example[];
  validation: Example[];
  /** Label names in id order (SEQ_CLS). */
  labels: string[];
  summary: DataSummary;
}

async function fetchText(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new EngineError('BAD_DATA', `Could not download ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new EngineError('BAD_DATA', `Could not download ${url}: HTTP ${res.status}`);
  return res.text();
}

/** A built-in dataset's index entry and the text of its train and (if it has one) validation file. */
async function builtinFiles(baseUrl: string, id: string): Promise<{ entry: BuiltinDataset; train: string; validation: string | null }> {
  const entry = (await builtinIndex(baseUrl)).find((d) => d.id === id);
  if (!entry) throw new EngineError('BAD_DATA', `There is no built-in dataset "${id}".`);
  const text = (file: string) => fetchText(new URL(`datasets/${file}`, baseUrl).href);
  return { entry, train: await text(entry.files.train), validation: entry.files.validation ? await text(entry.files.validation) : null };
}

/** The built-in dataset list. */
export async function builtinIndex(baseUrl: string): Promise<BuiltinDataset[]> {
  const text = await fetchText(new URL('datasets/index.json', baseUrl).href);
  try {
    return JSON.parse(text) as BuiltinDataset[];
  } catch {
    throw new EngineError('BAD_DATA', 'datasets/index.json is not valid JSON');
  }
}

/** Fits a mapping to the task: classification needs a label column, language modelling does not use one. */
function mappingFor(table: DataTable, req: DataRequest, fallback?: ColumnMapping): ColumnMapping {
  const m = req.mapping ?? fallback ?? guessMapping(table.columns, req.task);
  if (req.task === 'SEQ_CLS' && m.kind !== 'text-label') {
    const g = guessMapping(table.columns, 'SEQ_CLS');
    if (g.kind === 'text-label') return g;
    throw new EngineError('BAD_DATA', `${table.file}: classification needs a text column and a label column; the file has only ${table.columns.join(', ')}`);
  }
  if (req.task === 'CAUSAL_LM' && m.kind === 'text-label') return { kind: 'text', text: m.text };
  return m;
}

/**
 * Loads, maps, splits and summarises a dataset. `encode` (the model's tokenizer) adds token statistics;
 * instruction / chat rows need the `tokenizer` itself (its chat template) to become examples.
 */
export async function loadData(req: DataRequest, baseUrl: string, encode: ((s: string) => number[]) | null, tokenizer: Tokenizer | null = null): Promise<LoadedData> {
  let trainTable: DataTable;
  let validTable: DataTable | null = null;
  let name: string;
  let fallback: ColumnMapping | undefined;
  let labelOrder: string[] | undefined;
  let labelNamesShown: string[] | undefined;

  if (req.task === 'SEQ_2_SEQ_LM') return loadSeq2SeqData(req, baseUrl, tokenizer);
  if (req.task === 'TOKEN_CLS' && req.hub) return loadTokenClsData(req, baseUrl, tokenizer);
  let hub: { info: HubDataInfo; train: HubTable; validation: HubTable | null } | null = null;
  if (req.hub) {
    hub = await readHubData(req.hub);
    name = hub.info.id;
    trainTable = stringTable(hub.train);
    validTable = hub.validation && stringTable(hub.validation);
  } else if (req.task === 'TOKEN_CLS') {
    return loadTokenClsData(req, baseUrl, tokenizer);
  } else if (req.source.kind === 'builtin') {
    const { entry, train, validation } = await builtinFiles(baseUrl, req.source.id);
    name = entry.name;
    trainTable = parseDataFile(entry.files.train, train);
    if (validation !== null) validTable = parseDataFile(entry.files.validation!, validation);
    fallback = entry.labelField ? { kind: 'text-label', text: entry.textField, label: entry.labelField } : { kind: 'text', text: entry.textField };
    if (entry.labels && entry.labelField) {
      // Labels stored as ids 0..K-1 show with the names the index gives them.
      labelOrder = entry.labels.map((_, i) => String(i));
      const values = labelNames(trainTable.rows.map((r) => r[entry.labelField!] ?? ''));
      if (values.every((v) => labelOrder!.includes(v))) labelNamesShown = entry.labels;
      else labelOrder = undefined;
    }
  } else {
    const file = req.source.file;
    name = file.name;
    // Bytes, not file.text(): a UTF-16 file with a byte-order mark is named as such instead of decoded as UTF-8.
    trainTable = parseDataFile(file.name, new Uint8Array(await file.arrayBuffer()));
  }

  const chat = req.task === 'CAUSAL_LM' ? chatFormatFor(trainTable, req.chat, req.mapping !== undefined) : null;
  if (chat) {
    const where = (t: DataTable) => (i: number) => `${t.file} line ${t.lines[i]}`;
    const c = loadChatData(chat, hub ? hub.train : { ...trainTable, where: where(trainTable) }, hub ? hub.validation : validTable && { ...validTable, where: where(validTable) }, {
      settings: req.chat, tokenizer, maxLength: req.maxLength, validationSplit: req.validationSplit, seed: req.seed,
    });
    const issues = [...trainTable.issues.map(issueText), ...(validTable?.issues.map(issueText) ?? []), ...c.issues];
    const summary: DataSummary = {
      name, columns: trainTable.columns, mapping: guessMapping(trainTable.columns, req.task),
      preview: trainTable.rows.slice(0, 8).map((cells, i) => ({ line: trainTable.lines[i], cells })),
      labels: [], trainRows: c.train.length, validationRows: c.validation.length,
      issues: issues.slice(0, 50), issueCount: issues.length, warnings: c.warnings, stats: c.tokenStats, chat: c.summary,
      ...(hub ? { hub: hub.info } : {}),
    };
    return { train: c.train, validation: c.validation, labels: [], summary };
  }

  const mapping = mappingFor(trainTable, req, fallback);
  const tr = toExamples(trainTable, mapping, labelOrder);
  const labels = tr.labels;
  const issues: DataIssue[] = [...trainTable.issues, ...tr.issues];
  const warnings = [...tr.warnings];
  let train = tr.examples;
  let validation: Example[] = [];
  if (validTable) {
    const va = toExamples(validTable, mapping, labels);
    validation = va.examples;
    issues.push(...validTable.issues, ...va.issues);
    warnings.push(...va.warnings);
  } else {
    ({ train, validation } = splitValidation(train, req.validationSplit, req.seed));
  }
  if (train.length === 0) throw new EngineError('BAD_DATA', `${name}: no training rows are left after the validation split.`);
  const baselines = req.task === 'SEQ_CLS' ? classBaselines(train, validation, labels.length) : null;

  const summary: DataSummary = {
    name,
    columns: trainTable.columns,
    mapping,
    preview: trainTable.rows.slice(0, 8).map((cells, i) => ({ line: trainTable.lines[i], cells })),
    labels: labelNamesShown ?? labels,
    trainRows: train.length,
    validationRows: validation.length,
    issues: issues.slice(0, 50).map(issueText),
    issueCount: issues.length,
    warnings,
    stats: encode ? tokenStats([...train, ...validation], encode, req.maxLength) : null,
    ...(hub ? { hub: hub.info } : {}),
    ...(baselines ? { baselines } : {}),
  };
  return { train, validation, labels: summary.labels, summary };
}

/**
 * TOKEN_CLS data: a built-in tagging dataset or an uploaded CoNLL / JSONL file, read by the engine's tokcls-data as
 * the CLI reads it, the words split into the model's sub-words with run_ner.py's alignment. Bad rows are skipped and
 * reported by line; the tags come from the label list given, the built-in list, or the data (sorted).
 */
async function loadTokenClsData(req: DataRequest, baseUrl: string, tokenizer: Tokenizer | null): Promise<LoadedData> {
  let name: string;
  let given = req.tokcls?.labelList;
  let train: TokenClsRow[];
  let validation: TokenClsRow[] = [];
  const issues: DataIssue[] = [];
  const read = (file: string, content: string | Uint8Array) => {
    const r = parseTokenClsFile(file, content);
    issues.push(...r.issues);
    return r.rows;
  };
  let hubInfo: HubDataInfo | null = null;
  if (req.hub) {
    // A Hub dataset's list columns, its tag names from the features unless a label list is given.
    const h = await readHubTokenClsData(req.hub);
    ({ info: hubInfo, train } = h);
    name = hubInfo.id;
    validation = h.validation ?? [];
    issues.push(...h.issues);
    given ??= h.tagNames ?? undefined;
  } else if (req.source.kind === 'builtin') {
    const b = await builtinFiles(baseUrl, req.source.id);
    const entry = b.entry;
    if (entry.task !== 'TOKEN_CLS') throw new EngineError('BAD_DATA', `${entry.name} is a ${entry.task} dataset; pick a tagging dataset or upload a CoNLL / JSONL file for TOKEN_CLS.`);
    name = entry.name;
    train = read(entry.files.train, b.train);
    if (b.validation !== null) validation = read(entry.files.validation!, b.validation);
    given ??= entry.labels;
  } else {
    name = req.source.file.name;
    train = read(name, new Uint8Array(await req.source.file.arrayBuffer()));
  }
  if (!train.length) throw new EngineError('BAD_DATA', `${name}: no usable sentences${issues.length ? ` (${issueText(issues[0])})` : ''}.`);
  if (!validation.length) ({ train, validation } = splitValidation(train, req.validationSplit, req.seed));
  if (!train.length) throw new EngineError('BAD_DATA', `${name}: no training sentences are left after the validation split.`);
  const labelHint = 'enter the label list (tags in id order) in the Data panel';
  const labels = hubInfo ? hubTagList([...train, ...validation], given, null, null, hubInfo.id, labelHint) : tagList([...train, ...validation], given, null, labelHint);
  const labelAllTokens = !!req.tokcls?.labelAllTokens;
  const hints = { unknownTag: 'add it to the label list in the Data panel', noTokenizer: 'the words need the model\'s tokenizer.json; load a model with one, or upload pre-tokenized {"input_ids", "labels"} rows' };
  const encode = (rows: TokenClsRow[]) => {
    const ok: TokenClsRow[] = [];
    for (const r of rows) {
      try {
        ok.push(encodeTokenClsRows([r], labels, tokenizer, labelAllTokens, hints)[0]);
      } catch (e) {
        if (!(e instanceof EngineError) || !tokenizer) throw e;
        issues.push({ file: r.file, line: r.line, message: e.message.replace(/^.*? (line|row) \d+: /, '') });
      }
    }
    return ok;
  };
  train = encode(train);
  validation = encode(validation);
  if (!train.length) throw new EngineError('BAD_DATA', `${name}: no usable sentences (${issues.length ? issueText(issues[0]) : 'none left'}).`);
  const toEx = (r: TokenClsRow): Example => ({ inputIds: r.inputIds!, labels: r.labels!, line: r.line });
  const first = train[0];
  const tagNames = (r: TokenClsRow) => r.tags!.map((t) => (typeof t === 'number' ? labels[t] ?? String(t) : t));
  // The sample is the first sentence with an entity (else the first), so the preview shows what tags look like.
  const shown = train.find((r) => r.words && tagNames(r).some((t) => t !== 'O')) ?? first;
  const sample = shown.words ? { line: shown.line, words: shown.words, tags: tagNames(shown) } : null;
  const lengths = [...train, ...validation].map((r) => r.inputIds!.length);
  const summary: DataSummary = {
    name,
    columns: hubInfo?.tokcls ? [hubInfo.tokcls.tokensColumn, hubInfo.tokcls.tagsColumn] : first.words ? ['tokens', 'ner_tags'] : ['input_ids', 'labels'],
    mapping: { kind: 'text', text: hubInfo?.tokcls?.tokensColumn ?? (first.words ? 'tokens' : 'input_ids') },
    preview: [],
    labels,
    trainRows: train.length,
    validationRows: validation.length,
    issues: issues.slice(0, 50).map(issueText),
    issueCount: issues.length,
    warnings: [],
    stats: tokenizer ? tokenStatsOf(lengths, req.maxLength) : null,
    ...(labels.includes('O') ? { baselines: allOTagger(validation, labels.indexOf('O')) } : {}),
    tokcls: { train: tokenClsStats(train, labels, req.maxLength), validation: tokenClsStats(validation, labels, req.maxLength), sample, labelAllTokens },
    ...(hubInfo ? { hub: hubInfo } : {}),
  };
  return { train: train.map(toEx), validation: validation.map(toEx), labels, summary };
}

/** Token-length statistics from lengths already known (the encoded sentences). */
function tokenStatsOf(lengths: number[], maxLength: number): TokenStats {
  const lens = [...lengths].sort((a, b) => a - b);
  const n = lens.length;
  const q = (p: number) => (n ? lens[Math.min(n - 1, Math.floor(p * (n - 1) + 0.5))] : 0);
  return {
    count: n, min: n ? lens[0] : 0, max: n ? lens[n - 1] : 0, mean: n ? lens.reduce((a, b) => a + b, 0) / n : 0,
    p50: q(0.5), p95: q(0.95), truncated: lens.filter((l) => l > maxLength).length, maxLength,
  };
}

/**
 * SEQ_2_SEQ_LM data: a built-in source / target dataset, an uploaded CSV / JSONL with a source and a target column,
 * or pre-tokenized {"input_ids", "labels"} rows, read by the engine's seq2seq-data as the CLI reads them. With a
 * tokenizer every row is encoded as the session will encode it (</s> ending source and target), so a row the run
 * would refuse is reported here by line and skipped; the lengths give the truncation at max length.
 */
async function loadSeq2SeqData(req: DataRequest, baseUrl: string, tokenizer: Tokenizer | null): Promise<LoadedData> {
  let name: string;
  let trainTable: DataTable;
  let validTable: DataTable | null = null;
  let cols: { sourceColumn?: string; targetColumn?: string } = { sourceColumn: req.seq2seq?.sourceColumn, targetColumn: req.seq2seq?.targetColumn };
  let hubInfo: HubDataInfo | null = null;
  if (req.hub) {
    const hub = await readHubData(req.hub);
    hubInfo = hub.info;
    name = hub.info.id;
    trainTable = stringTable(hub.train);
    validTable = hub.validation && stringTable(hub.validation);
  } else if (req.source.kind === 'builtin') {
    const b = await builtinFiles(baseUrl, req.source.id);
    const entry = b.entry;
    if (entry.task !== 'SEQ_2_SEQ_LM') throw new EngineError('BAD_DATA', `${entry.name} is a ${entry.task} dataset; pick a source / target dataset or upload a CSV / JSONL file for SEQ_2_SEQ_LM.`);
    name = entry.name;
    trainTable = parseDataFile(entry.files.train, b.train);
    if (b.validation !== null) validTable = parseDataFile(entry.files.validation!, b.validation);
    if (cols.sourceColumn === undefined && cols.targetColumn === undefined && entry.sourceField && entry.targetField) {
      cols = { sourceColumn: entry.sourceField, targetColumn: entry.targetField };
    }
  } else {
    name = req.source.file.name;
    trainTable = parseDataFile(name, new Uint8Array(await req.source.file.arrayBuffer()));
  }
  // A column named in the project but missing from this file falls back to the file's own pair.
  if ((cols.sourceColumn && !trainTable.columns.includes(cols.sourceColumn)) || (cols.targetColumn && !trainTable.columns.includes(cols.targetColumn))) cols = {};
  // No column pair by name (source / target, input / output, ...): the first two columns, to be picked in the panel.
  const warnings: string[] = [];
  const c = trainTable.columns;
  if (cols.sourceColumn === undefined && cols.targetColumn === undefined && typeof seq2seqColumns(c, {}) === 'string' && c.length >= 2) {
    cols = { sourceColumn: c[0], targetColumn: c[1] };
    warnings.push(`No source / target columns by name: reading "${c[0]}" as the source and "${c[1]}" as the target; pick others below.`);
  }
  const issues: DataIssue[] = [...trainTable.issues, ...(validTable?.issues ?? [])];
  const read = (t: DataTable) => {
    const r = seq2seqRows(t, cols);
    // One issue for the whole file (a missing column) is the file's problem, not a row's.
    if (r.rows.length === 0 && r.issues.length === 1 && r.issues[0].line === 1 && t.rows.length > 0) {
      throw new EngineError('BAD_DATA', `${t.file}: ${r.issues[0].message.replace(/ with --(source|target)-column/, ' in the Data panel')}`);
    }
    issues.push(...r.issues);
    return r.rows;
  };
  const trainRows = read(trainTable);
  const validRows = validTable ? read(validTable) : [];
  const pretokenized = trainRows.length > 0 && trainRows[0].inputIds !== undefined;
  const picked = pretokenized ? null : seq2seqColumns(trainTable.columns, cols);
  const toEx = (r: (typeof trainRows)[number]): Example & { target?: string } =>
    r.inputIds ? { inputIds: r.inputIds, labels: r.labels, line: r.line } : { text: r.source, target: r.target, line: r.line };
  // Encoded as the session encodes them, untruncated: the lengths, and the rows it would refuse.
  const lengths: { source: number; target: number }[] = [];
  const usable = (rows: typeof trainRows, t: DataTable | null) => {
    const out: Example[] = [];
    for (const r of rows) {
      const ex = toEx(r);
      if (!tokenizer && !r.inputIds) {
        out.push(ex);
        continue;
      }
      try {
        const [enc] = encodeExamples([ex], {
          task: 'SEQ_2_SEQ_LM', maxLength: Number.MAX_SAFE_INTEGER, maxTargetLength: Number.MAX_SAFE_INTEGER,
          encode: tokenizer ? (s) => tokenizer.encode(s) : undefined, eosTokenId: tokenizer?.eosTokenId ?? null,
        });
        lengths.push({ source: enc.ids.length, target: enc.labels!.length });
        out.push(ex);
      } catch (e) {
        if (!(e instanceof EngineError)) throw e;
        issues.push({ file: t?.file ?? trainTable.file, line: r.line, message: e.message.replace(/^row \d+: /, '') });
      }
    }
    return out;
  };
  let train = usable(trainRows, trainTable);
  let validation = usable(validRows, validTable);
  if (!train.length) throw new EngineError('BAD_DATA', `${name}: no usable rows${issues.length ? ` (${issueText(issues[0])})` : ''}.`);
  if (!validTable) ({ train, validation } = splitValidation(train, req.validationSplit, req.seed));
  if (!train.length) throw new EngineError('BAD_DATA', `${name}: no training rows are left after the validation split.`);
  const first = trainRows.find((r) => r.source !== undefined);
  const known = lengths.length > 0;
  const maxTarget = req.seq2seq?.maxTargetLength ?? req.maxLength;
  const stats = (key: 'source' | 'target') => (known ? tokenStatsOf(lengths.map((l) => l[key]), key === 'source' ? req.maxLength : maxTarget) : null);
  const s2s: Seq2SeqSummary = {
    sourceColumn: picked && typeof picked === 'object' ? picked.source : null,
    targetColumn: picked && typeof picked === 'object' ? picked.target : null,
    source: stats('source'),
    target: stats('target'),
    sample: first ? { line: first.line, source: first.source!, target: first.target! } : null,
  };
  if (!validation.length) warnings.push('No validation rows: evaluation (loss, exact match, chrF, ROUGE-L) needs a validation split above 0.');
  const summary: DataSummary = {
    name,
    columns: trainTable.columns,
    mapping: { kind: 'prompt-response', prompt: s2s.sourceColumn ?? 'input_ids', response: s2s.targetColumn ?? 'labels' },
    preview: trainTable.rows.slice(0, 8).map((cells, i) => ({ line: trainTable.lines[i], cells })),
    labels: [],
    trainRows: train.length,
    validationRows: validation.length,
    issues: issues.slice(0, 50).map(issueText),
    issueCount: issues.length,
    warnings,
    stats: s2s.source,
    seq2seq: s2s,
    ...(hubInfo ? { hub: hubInfo } : {}),
  };
  return { train, validation, labels: [], summary };
}

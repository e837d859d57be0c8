/**
 * Token-classification rows from a Hub dataset, as the canonical NER sets store them (conll2003, wnut_17, wikiann):
 * a `tokens` column (list<string>) and a `ner_tags` column (list<int> of class ids, or list<string> of tag names),
 * read from Parquet as lists, not as text. The tag names come from the dataset's features, where `datasets` keeps
 * them as a ClassLabel's names in id order:
 *
 *   the Parquet footer     key "huggingface": {"info": {"features": {"ner_tags": {"_type": "Sequence",
 *                          "feature": {"_type": "ClassLabel", "names": [...]}}}}} (files written by `datasets`,
 *                          the Hub's Parquet conversion among them)
 *   the README's YAML      dataset_info (one mapping, or a list with a config_name each): features:
 *                          - name: ner_tags / sequence (or list): class_label: names: {'0': O, '1': B-PER, ...}
 *
 * Bad rows (no tokens, a tag per token missing, a class id outside the names) are issues by row, as the file
 * loaders report them; a missing column is BAD_DATA naming the columns there are.
 */
import { EngineError } from '../errors';
import { listNames, quoteValue } from '../quote';
import type { DataIssue } from '../train/data-parse';
import { tagList, type TokenClsRow } from '../train/tokcls-data';
import { HubError } from './http-source';
import type { DatasetSplit, HubDataset } from './hub-dataset';

/** Column names tried, in order, when none is chosen. */
export const TOKEN_COLUMNS = ['tokens', 'words'];
export const TAG_COLUMNS = ['ner_tags', 'tags', 'labels'];

/** ClassLabel names (in id order) per column. */
export type ClassLabels = Record<string, string[]>;

export interface DatasetClassLabels {
  labels: ClassLabels;
  /** Where they were read. */
  source: 'parquet-metadata' | 'readme';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** A ClassLabel's names, from `datasets`' JSON form (a list) or the README's ({'0': 'O', ...} or a list). */
function namesOf(v: unknown): string[] | null {
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string' || typeof x === 'number') ? v.map(String) : null;
  if (!isObj(v)) return null;
  const entries = Object.entries(v).map(([k, x]) => [Number(k), x] as const);
  if (!entries.length || entries.some(([k, x]) => !Number.isInteger(k) || (typeof x !== 'string' && typeof x !== 'number'))) return null;
  const out: string[] = [];
  for (const [k, x] of entries) out[k] = String(x);
  return out.length === entries.length ? out : null; // ids 0..K-1, none missing
}

/** The ClassLabel names of each column of `datasets`' features JSON ({column: feature}); lists unwrapped. */
export function classLabelsOfFeatures(features: unknown): ClassLabels {
  const out: ClassLabels = {};
  if (!isObj(features)) return out;
  for (const [col, f0] of Object.entries(features)) {
    let f: unknown = f0;
    for (let depth = 0; depth < 4; depth++) {
      if (Array.isArray(f)) f = f[0];
      else if (isObj(f) && ['Sequence', 'List', 'LargeList'].includes(String(f._type))) f = f.feature;
      else break;
    }
    if (isObj(f) && f._type === 'ClassLabel') {
      const names = namesOf(f.names);
      if (names) out[col] = names;
    }
  }
  return out;
}

/**
 * The ClassLabel names of each column in a README's YAML `dataset_info` for `config` (the entry with that
 * config_name; the only entry, or one without a config_name, for `default`).
 */
export function classLabelsOfReadme(readme: string, config: string): ClassLabels {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(\r?\n|$)/.exec(readme);
  if (!m) return {};
  let card: unknown;
  try {
    card = parseYaml(m[1]);
  } catch {
    return {};
  }
  const info = isObj(card) ? card.dataset_info : undefined;
  const entries = (Array.isArray(info) ? info : [info]).filter(isObj);
  const entry = entries.find((e) => e.config_name === config) ?? (entries.length === 1 ? entries[0] : entries.find((e) => e.config_name === undefined));
  const out: ClassLabels = {};
  if (!entry || !Array.isArray(entry.features)) return out;
  for (const f of entry.features) {
    if (!isObj(f) || typeof f.name !== 'string') continue;
    let v: unknown = f;
    for (let depth = 0; depth < 4 && isObj(v) && !('class_label' in v); depth++) v = isObj(v) ? (v.sequence ?? v.list ?? v.large_list) : undefined;
    const names = isObj(v) && isObj(v.class_label) ? namesOf(v.class_label.names) : null;
    if (names) out[f.name] = names;
  }
  return out;
}

/**
 * The class-label names of a split's columns: from its first Parquet file's `huggingface` metadata (already read
 * with the footer), else from the README's dataset_info; null when neither names any.
 */
export async function datasetClassLabels(d: HubDataset, split: DatasetSplit, config: string, signal?: AbortSignal): Promise<DatasetClassLabels | null> {
  const kv = await d.parquetKeyValues(split, signal);
  if (kv.huggingface) {
    try {
      const meta = JSON.parse(kv.huggingface) as { info?: { features?: unknown } };
      const labels = classLabelsOfFeatures(meta?.info?.features);
      if (Object.keys(labels).length) return { labels, source: 'parquet-metadata' };
    } catch {
      // Unreadable metadata: the README may still say.
    }
  }
  let text: string;
  try {
    text = await (await d.get(d.resolveUrl('README.md'), 'README.md', {}, signal)).text();
  } catch (e) {
    // No README: no names from it. Anything else (offline, cancelled, gated) is the person's to know.
    if (e instanceof HubError && e.status === 404) return null;
    throw e;
  }
  const labels = classLabelsOfReadme(text, config);
  return Object.keys(labels).length ? { labels, source: 'readme' } : null;
}

export interface TokenClsColumns {
  tokens: string;
  tags: string;
}

/**
 * The words and tags columns: the ones chosen, else the first of tokens / words and of ner_tags / tags / labels.
 * `how` says how to choose another (e.g. "--text-column / --label-column").
 */
export function tokenClsColumns(file: string, columns: readonly string[], o: { tokensColumn?: string; tagsColumn?: string }, how: string): TokenClsColumns {
  const pick = (given: string | undefined, names: string[], what: string): string => {
    const c = given ?? names.find((n) => columns.includes(n));
    if (c !== undefined && columns.includes(c)) return c;
    const asked = given !== undefined ? `no column ${quoteValue(given)}` : `no ${what} column (${names.join(' / ')})`;
    throw new EngineError('BAD_DATA', `${file}: ${asked}; its columns are ${listNames([...columns])}. Token classification reads a list of words and a list of tags per row; choose the columns with ${how}.`);
  };
  return { tokens: pick(o.tokensColumn, TOKEN_COLUMNS, 'words'), tags: pick(o.tagsColumn, TAG_COLUMNS, 'tags') };
}

/** A list cell: a Parquet list as read, or a JSON list written as text (CSV / JSON Lines files). */
function listCell(v: unknown): unknown[] | null {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string' && v.trimStart().startsWith('[')) {
    try {
      const x: unknown = JSON.parse(v);
      return Array.isArray(x) ? x : null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Rows of a Hub table as token-classification rows (words + tags); a row that cannot be one is an issue naming its
 * row. With `names` (the features' ClassLabel names) an integer tag outside 0..K-1 is one too.
 */
export function hubTokenClsRows(
  t: { file: string; rows: readonly Record<string, unknown>[]; where: (i: number) => string },
  cols: TokenClsColumns,
  names: readonly string[] | null,
): { rows: TokenClsRow[]; issues: DataIssue[] } {
  const rows: TokenClsRow[] = [];
  const issues: DataIssue[] = [];
  t.rows.forEach((row, i) => {
    const line = i + 1;
    const issue = (message: string) => issues.push({ file: t.file, line, message });
    const words = listCell(row[cols.tokens]);
    const tags = listCell(row[cols.tags]);
    if (!words || !words.length) return void issue(`${cols.tokens} must be a non-empty list of words, got ${quoteValue(row[cols.tokens], 60)}`);
    if (words.some((w) => typeof w !== 'string')) return void issue(`${cols.tokens} must be a list of strings, got ${quoteValue(words, 60)}`);
    if (!tags || tags.length !== words.length) {
      return void issue(`${cols.tags} must have one tag per word: ${words.length} word(s) but ${tags ? `${tags.length} tag(s)` : quoteValue(row[cols.tags], 60)}`);
    }
    if (tags.some((x) => typeof x !== 'string' && !Number.isInteger(x))) return void issue(`${cols.tags} must hold tag names or integer class ids, got ${quoteValue(tags, 60)}`);
    const out = names ? tags.findIndex((x) => typeof x === 'number' && (x < 0 || x >= names.length)) : -1;
    if (out >= 0) return void issue(`${cols.tags} id ${tags[out]} (word ${out + 1}, ${quoteValue(words[out])}) is out of range: the dataset's features name ${names!.length} tags, ids 0..${names!.length - 1}`);
    rows.push({ file: t.file, line, words: words as string[], tags: tags as (string | number)[], where: t.where(i) });
  });
  return { rows, issues };
}

/**
 * The tag list in id order for Hub rows: the list given, else the features' names of the tags column, else the
 * string tags sorted (run_ner.py), else config.json's id2label when it names its labels; integer tags with none of
 * these are BAD_ARGUMENT saying how to give the list (`how`). A model whose id2label holds the features' names in
 * another order keeps its order, and the rows' class ids are renumbered to it, as run_ner.py does.
 */
export function hubTagList(rows: readonly TokenClsRow[], given: string[] | undefined, featureNames: string[] | null, configNames: string[] | null, dataset: string, how: string): string[] {
  if (given !== undefined) return given;
  const named = configNames && !configNames.every((n, i) => n === `LABEL_${i}`) ? configNames : null;
  if (featureNames) {
    const same = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
    if (named && same(named, featureNames) && named.some((n, i) => n !== featureNames[i])) {
      const to = featureNames.map((n) => named.indexOf(n));
      for (const r of rows) if (r.tags) r.tags = r.tags.map((t) => (typeof t === 'number' && to[t] !== undefined ? to[t] : t));
      return named;
    }
    return featureNames;
  }
  return tagList(rows, undefined, named, `${dataset}'s features (the Parquet metadata, the README's dataset_info) name no tags for these class ids; ${how}`);
}

// A YAML subset, enough for dataset cards: block mappings and sequences (a sequence may sit at its key's indent),
// plain / single- / double-quoted scalars, flow lists of scalars, comments; block scalars (| >) are kept as text.
type Line = { indent: number; text: string };

export function parseYaml(text: string): unknown {
  const lines: Line[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (!raw.trim() || /^\s*#/.test(raw)) continue;
    lines.push({ indent: raw.length - raw.trimStart().length, text: raw.trim() });
  }
  let i = 0;
  const isItem = (l: Line) => l.text === '-' || l.text.startsWith('- ');
  const skipDeeper = (indent: number) => {
    const parts: string[] = [];
    while (i < lines.length && lines[i].indent > indent) parts.push(lines[i++].text);
    return parts;
  };
  const node = (indent: number): unknown => {
    const l = lines[i];
    if (!l || l.indent < indent) return null;
    return isItem(l) ? seq(l.indent) : map(l.indent);
  };
  const seq = (indent: number): unknown[] => {
    const out: unknown[] = [];
    while (i < lines.length && lines[i].indent === indent && isItem(lines[i])) {
      const rest = lines[i].text.slice(1).trimStart();
      if (!rest) {
        i++;
        out.push(node(indent + 1));
      } else if (keyOf(rest)) {
        // "- key: value" opens a mapping whose keys sit where "key" does.
        lines[i] = { indent: indent + lines[i].text.length - rest.length, text: rest };
        out.push(map(lines[i].indent));
      } else {
        i++;
        out.push(scalar(rest, skipDeeper(indent)));
      }
    }
    return out;
  };
  const map = (indent: number): Obj => {
    const out: Obj = {};
    while (i < lines.length && lines[i].indent === indent && !isItem(lines[i])) {
      const k = keyOf(lines[i].text);
      if (!k) throw new Error(`not a mapping entry: ${lines[i].text}`);
      i++;
      if (k.rest) out[k.key] = scalar(k.rest, skipDeeper(indent));
      else if (i < lines.length && (lines[i].indent > indent || (lines[i].indent === indent && isItem(lines[i])))) out[k.key] = node(lines[i].indent);
      else out[k.key] = null;
    }
    return out;
  };
  return node(0);
}

/** "key: rest" (key plain or quoted); null when the text is not a mapping entry. */
function keyOf(text: string): { key: string; rest: string } | null {
  let key: string;
  let after: string;
  if (text[0] === "'" || text[0] === '"') {
    const q = quoted(text);
    if (!q) return null;
    key = q.value;
    after = text.slice(q.end);
  } else {
    const m = /^([^:#]*?[^\s:])?:(\s|$)/.exec(text);
    if (!m || m[1] === undefined) return null;
    key = m[1];
    after = text.slice(m[1].length);
  }
  const m = /^\s*:(\s+|$)/.exec(after);
  if (!m) return null;
  return { key, rest: after.slice(m[0].length).trim() };
}

/** A quoted scalar at the start of `text`: its value and where it ends. */
function quoted(text: string): { value: string; end: number } | null {
  const q = text[0];
  let out = '';
  for (let j = 1; j < text.length; j++) {
    const c = text[j];
    if (q === "'" && c === "'") {
      if (text[j + 1] === "'") {
        out += "'";
        j++;
        continue;
      }
      return { value: out, end: j + 1 };
    }
    if (q === '"' && c === '\\') {
      const n = text[++j];
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'u' ? String.fromCharCode(parseInt(text.slice(j + 1, (j += 4) + 1), 16)) : n;
      continue;
    }
    if (q === '"' && c === '"') return { value: out, end: j + 1 };
    out += c;
  }
  return null;
}

function scalar(rest: string, continued: string[]): unknown {
  if (rest[0] === "'" || rest[0] === '"') {
    const q = quoted([rest, ...continued].join(' '));
    return q ? q.value : rest;
  }
  if (rest === '|' || rest === '>' || /^[|>][-+]?\d?$/.test(rest)) return continued.join(rest[0] === '|' ? '\n' : ' ');
  const plain = [rest, ...continued].join(' ').replace(/\s+#.*$/, '');
  if (plain.startsWith('[') && plain.endsWith(']')) {
    const inner = plain.slice(1, -1).trim();
    return inner ? inner.split(',').map((s) => scalar(s.trim(), [])) : [];
  }
  if (plain === '{}') return {};
  return plain;
}

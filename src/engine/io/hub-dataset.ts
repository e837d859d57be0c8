/**
 * Hugging Face Hub datasets by id, through the same HubClient as models (endpoint setting, token only to the Hub's
 * own origin, redirects followed hop by hop). What `datasets.load_dataset("owner/name", config, split=...)` reads:
 *
 *   configs and splits  the Hub's Parquet conversion (`/api/datasets/{id}/parquet`: {config: {split: [urls]}},
 *                       files in the `refs/convert/parquet` revision) when it has one, else the repo's own data files
 *                       (one config, `default`; splits from the file names as `datasets` infers them: train /
 *                       validation / test keywords, anything else train)
 *   row counts          from each Parquet file's footer (one range request per file), before any row is read
 *   rows                Parquet through hyparquet, reading only the row groups the first N rows need (HTTP range
 *                       requests); the repo's CSV / TSV / JSON / JSONL files whole
 *
 * Every failure is an EngineError naming the dataset, config, split or file, and what to do.
 */
import { listFiles } from '@huggingface/hub';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { EngineError } from '../errors';
import { listNames, quoteValue } from '../quote';
import { parseDataFile, type DataFormat } from '../train/data-parse';
import { HubError, type HubClient } from './hub';
import { decodeText } from './text';

export interface DatasetRef {
  repo: string;
  /** null: the only config, or `default`. */
  config: string | null;
  revision: string;
}

const NAME = /^(?![-.])(?!.*(?:--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

/**
 * `owner/name`, `owner/name:config`, `owner/name@revision`, `owner/name:config@revision`, optionally after `hub:`,
 * or a dataset page URL (`https://huggingface.co/datasets/owner/name[/tree/rev]`).
 */
export function parseDatasetId(input: string): DatasetRef {
  let s = input.trim().replace(/^hub:/, '');
  const bad = () =>
    new EngineError('BAD_ARGUMENT', `${quoteValue(input)} is not a Hub dataset id. Write owner/name, owner/name:config or owner/name:config@revision, e.g. stanfordnlp/imdb or nyu-mll/glue:sst2.`);
  let revision = 'main';
  const url = /^https?:\/\/[^/]+\/(.*)$/i.exec(s);
  if (url) {
    const parts = url[1].split(/[?#]/)[0].split('/').filter(Boolean);
    if (parts[0] !== 'datasets') throw bad();
    const tree = parts.findIndex((p) => p === 'tree' || p === 'blob' || p === 'resolve' || p === 'viewer');
    if (tree >= 0 && parts[tree] !== 'viewer' && parts[tree + 1]) revision = decodeURIComponent(parts[tree + 1]);
    const config = parts[tree] === 'viewer' && parts[tree + 1] ? parts[tree + 1] : null;
    s = parts.slice(1, tree >= 0 ? tree : undefined).join('/') + (config ? `:${config}` : '');
  } else {
    const at = s.indexOf('@');
    if (at >= 0) {
      revision = s.slice(at + 1);
      s = s.slice(0, at);
      if (!revision || /\s/.test(revision) || revision.includes('..')) throw bad();
    }
  }
  const colon = s.indexOf(':');
  const config = colon >= 0 ? s.slice(colon + 1) : null;
  const repo = colon >= 0 ? s.slice(0, colon) : s;
  const segs = repo.split('/');
  if (segs.length < 1 || segs.length > 2 || !segs.every((x) => NAME.test(x))) throw bad();
  if (config !== null && !/^[\w.-]{1,200}$/.test(config)) throw bad();
  return { repo, config, revision };
}

export function formatDatasetRef(r: DatasetRef): string {
  return `${r.repo}${r.config ? `:${r.config}` : ''}${r.revision !== 'main' ? `@${r.revision}` : ''}`;
}

export type DatasetFileFormat = 'parquet' | DataFormat | 'json';

export interface DatasetFile {
  path: string;
  url: string;
  format: DatasetFileFormat;
  size: number | null;
}

export interface DatasetSplit {
  name: string;
  files: DatasetFile[];
}

export interface DatasetConfig {
  name: string;
  splits: DatasetSplit[];
}

export interface DatasetListing {
  repo: string;
  revision: string;
  /** Where configs and splits came from. */
  source: 'parquet-conversion' | 'repo-files';
  configs: DatasetConfig[];
  /** Files the repo holds that no split reads (another format), for messages. */
  unreadable: string[];
}

const FORMAT_OF: Record<string, DatasetFileFormat> = {
  parquet: 'parquet', csv: 'csv', tsv: 'csv', jsonl: 'jsonl', ndjson: 'jsonl', json: 'json', txt: 'txt',
};
// Data a person might expect to load but that is not read here.
const OTHER_DATA = /\.(arrow|zip|tar|tgz|gz|bz2|xz|zst|7z|h5|hdf5|npy|npz|pkl|pickle|feather|avro|orc|xlsx|xls|tfrecord|wav|mp3|flac|png|jpe?g|webdataset)$/i;

/** The split a data file belongs to, by the keywords `datasets` looks for in its path; null: none named. */
export function splitOfPath(path: string): string | null {
  const p = path.toLowerCase();
  const has = (words: string) => new RegExp(`(^|[-._ /])(${words})([-._ 0-9/]|$)`).test(p);
  if (has('train|training')) return 'train';
  if (has('validation|valid|val|dev')) return 'validation';
  if (has('test|testing|eval|evaluation')) return 'test';
  return null;
}

const SPLIT_ORDER = ['train', 'validation', 'test'];
const bySplitOrder = (a: string, b: string) => (SPLIT_ORDER.indexOf(a) + 1 || 99) - (SPLIT_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b);

/** A dataset repo on the Hub: its listing, row counts and rows. */
export class HubDataset {
  readonly ref: DatasetRef;
  private listing: Promise<DatasetListing> | null = null;
  private readonly metadata = new Map<string, Promise<{ file: AsyncBuffer; metadata: FileMetaData }>>();

  constructor(readonly client: HubClient, ref: DatasetRef | string) {
    this.ref = typeof ref === 'string' ? parseDatasetId(ref) : ref;
  }

  get page(): string {
    return `${this.client.endpoint}/datasets/${this.ref.repo}`;
  }

  resolveUrl(file: string, revision = this.ref.revision): string {
    return `${this.client.endpoint}/datasets/${this.ref.repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** GET with the token rules, network failures and Hub error codes turned into messages about this dataset. */
  async get(url: string, what: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await this.client.fetch(url, { headers, signal });
    } catch (e) {
      if (signal?.aborted) throw new EngineError('CANCELLED', `Reading ${what} of ${this.ref.repo} was cancelled.`);
      const detail = [(e as Error)?.message, (e as { cause?: { message?: string } })?.cause?.message].filter(Boolean).join(': ');
      throw new HubError(`Could not reach ${this.client.endpoint} to read ${what} of dataset ${this.ref.repo} (${detail}). Check the connection and the Hub URL setting, then retry.`, { retryable: true });
    }
    if (res.ok) return res;
    throw await this.error(res, what);
  }

  /** The Hub's X-Error-Code (RepoNotFound, RevisionNotFound, GatedRepo, EntryNotFound) as a message about this dataset. */
  async error(res: Response, what: string): Promise<EngineError> {
    const code = res.headers.get('x-error-code');
    await res.body?.cancel().catch(() => undefined);
    const { repo, revision } = this.ref;
    const o = { status: res.status, hubCode: code };
    const token = this.client.hasToken;
    if (code === 'RepoNotFound' || (res.status === 404 && !code && what === 'the file list')) {
      return new HubError(`Dataset ${repo} was not found on ${this.client.endpoint}. Check the id (owner/name, e.g. stanfordnlp/imdb)${token ? '' : '; if it is private, add an access token'}.`, o);
    }
    if (code === 'RevisionNotFound') return new HubError(`Revision "${revision}" was not found in dataset ${repo}. Use an existing branch, tag or commit (see ${this.page}/tree/main).`, o);
    if (code === 'GatedRepo') {
      return new HubError(res.status === 401 || !token
        ? `${repo} is a gated dataset: accept its conditions at ${this.page} while logged in, then add an access token (from ${this.client.endpoint}/settings/tokens).`
        : `${repo} is a gated dataset and this access token has no access to it yet: request access at ${this.page}.`, o);
    }
    if (code === 'EntryNotFound' || res.status === 404) return new HubError(`${what} of dataset ${repo} was not found (HTTP 404); it may have been moved or deleted, list the dataset again.`, o);
    if (res.status === 401) return new HubError(token ? `${this.client.endpoint} rejected the access token for dataset ${repo} (HTTP 401).` : `Dataset ${repo} needs an access token (HTTP 401): it is private or gated; see ${this.page}.`, o);
    if (res.status === 403) return new HubError(`Access to dataset ${repo} is forbidden (HTTP 403); see ${this.page}.`, o);
    return new HubError(`Reading ${what} of dataset ${repo} failed: HTTP ${res.status}${res.status >= 500 ? '; retry in a moment' : ''}.`, { ...o, retryable: res.status === 429 || res.status >= 500 });
  }

  /** Configs, splits and their files (cached per object; a failure is not remembered). */
  list(signal?: AbortSignal): Promise<DatasetListing> {
    this.listing ??= this.fetchListing(signal).catch((e) => {
      this.listing = null;
      throw e;
    });
    return this.listing;
  }

  private async fetchListing(signal?: AbortSignal): Promise<DatasetListing> {
    const files = await this.repoFiles(signal);
    const unreadable = files.filter((f) => OTHER_DATA.test(f.path)).map((f) => f.path);
    // The conversion is of the main branch only; an explicit revision reads that revision's own files.
    const converted = this.ref.revision === 'main' ? await this.parquetConversion(signal) : null;
    if (converted?.length) return { repo: this.ref.repo, revision: this.ref.revision, source: 'parquet-conversion', configs: converted, unreadable };
    const data = files.filter((f) => FORMAT_OF[f.path.split('.').pop()!.toLowerCase()] && !/(^|\/)(README|LICENSE|\.gitattributes)/i.test(f.path) && !/\.(md)$/i.test(f.path));
    // Text files beside tabular ones are documentation, not data.
    const tabular = data.filter((f) => !f.path.endsWith('.txt'));
    const use = tabular.length ? tabular : data;
    if (!use.length) {
      const why = unreadable.length
        ? `its data is in files PEFT Studio cannot read (${listNames(unreadable.slice(0, 5))})`
        : `it has no Parquet, CSV, JSON or JSONL files (files: ${listNames(files.map((f) => f.path).slice(0, 8))})`;
      throw new EngineError('BAD_DATA', `Dataset ${this.ref.repo}: ${why}, and the Hub has no Parquet conversion of it. Use a dataset with Parquet / CSV / JSON(L) files, or convert it first.`);
    }
    const named = use.some((f) => splitOfPath(f.path) !== null);
    const splits = new Map<string, DatasetFile[]>();
    for (const f of use.sort((a, b) => a.path.localeCompare(b.path))) {
      const split = (named ? splitOfPath(f.path) : null) ?? 'train';
      const ext = f.path.split('.').pop()!.toLowerCase();
      const entry: DatasetFile = { path: f.path, url: this.resolveUrl(f.path), format: FORMAT_OF[ext], size: f.size };
      splits.set(split, [...(splits.get(split) ?? []), entry]);
    }
    const config: DatasetConfig = { name: 'default', splits: [...splits.keys()].sort(bySplitOrder).map((name) => ({ name, files: splits.get(name)! })) };
    return { repo: this.ref.repo, revision: this.ref.revision, source: 'repo-files', configs: [config], unreadable };
  }

  private async repoFiles(signal?: AbortSignal): Promise<{ path: string; size: number }[]> {
    const guarded = async (input: RequestInfo | URL, init?: RequestInit) => this.get(String(input instanceof Request ? input.url : input), 'the file list', Object.fromEntries(new Headers(init?.headers).entries()), signal);
    const out: { path: string; size: number }[] = [];
    for await (const e of listFiles({
      repo: { type: 'dataset', name: this.ref.repo }, revision: encodeURIComponent(this.ref.revision), recursive: true,
      hubUrl: this.client.endpoint, fetch: guarded as typeof fetch,
    })) {
      if (e.type === 'file') out.push({ path: e.path, size: e.lfs?.size ?? e.size });
    }
    return out;
  }

  /** `/api/datasets/{id}/parquet`: {config: {split: [url, ...]}}; null when the Hub has none (404, or no such API). */
  private async parquetConversion(signal?: AbortSignal): Promise<DatasetConfig[] | null> {
    let res: Response;
    try {
      res = await this.client.fetch(`${this.client.endpoint}/api/datasets/${this.ref.repo}/parquet`, { signal });
    } catch {
      return null;
    }
    if (!res.ok) {
      if (res.headers.get('x-error-code') === 'GatedRepo') throw await this.error(res, 'the Parquet listing');
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      return null;
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) return null;
    const configs: DatasetConfig[] = [];
    for (const [name, splits] of Object.entries(body as Record<string, unknown>)) {
      if (!splits || typeof splits !== 'object') continue;
      const list = Object.entries(splits as Record<string, unknown>)
        .filter(([, urls]) => Array.isArray(urls) && urls.length)
        .map(([split, urls]) => ({
          name: split,
          files: (urls as string[]).map((url) => ({ path: `${name}/${split}/${url.split('/').pop()}`, url, format: 'parquet' as const, size: null })),
        }));
      if (list.length) configs.push({ name, splits: list.sort((a, b) => bySplitOrder(a.name, b.name)) });
    }
    return configs;
  }

  /** The config asked for (or the only / `default` one), with a message listing the others when it is not there. */
  async config(name = this.ref.config, signal?: AbortSignal): Promise<DatasetConfig> {
    const l = await this.list(signal);
    if (name) {
      const c = l.configs.find((x) => x.name === name);
      if (c) return c;
      throw new EngineError('BAD_DATA', `Dataset ${this.ref.repo} has no config ${quoteValue(name)}; its configs are ${listNames(l.configs.map((x) => x.name))}.`);
    }
    if (l.configs.length === 1) return l.configs[0];
    const d = l.configs.find((x) => x.name === 'default');
    if (d) return d;
    throw new EngineError('BAD_DATA', `Dataset ${this.ref.repo} has ${l.configs.length} configs; choose one: ${listNames(l.configs.map((x) => x.name))} (write ${this.ref.repo}:${l.configs[0].name}).`);
  }

  /** One split of a config, or a message listing the splits there are. */
  async split(name: string, config?: string | null, signal?: AbortSignal): Promise<DatasetSplit> {
    const c = await this.config(config ?? this.ref.config, signal);
    const s = c.splits.find((x) => x.name === name);
    if (s) return s;
    throw new EngineError('BAD_DATA', `Dataset ${this.ref.repo} (config ${c.name}) has no split ${quoteValue(name)}; its splits are ${listNames(c.splits.map((x) => x.name))}.`);
  }

  /** A Parquet file as hyparquet's AsyncBuffer over range requests, with its footer read (once per file). */
  private parquet(f: DatasetFile, signal?: AbortSignal): Promise<{ file: AsyncBuffer; metadata: FileMetaData }> {
    let p = this.metadata.get(f.url);
    if (!p) {
      p = openParquet(this, f, signal).catch((e) => {
        this.metadata.delete(f.url);
        throw e;
      });
      this.metadata.set(f.url, p);
    }
    return p;
  }

  /** Rows per file of a split: from the Parquet footers (CSV / JSON files: null, known once read). */
  async rowCounts(split: DatasetSplit, signal?: AbortSignal): Promise<(number | null)[]> {
    return Promise.all(split.files.map(async (f) => (f.format === 'parquet' ? Number((await this.parquet(f, signal)).metadata.num_rows) : null)));
  }

  /** The key-value metadata of a split's first Parquet file (footer already read; `{}` for CSV / JSON splits). */
  async parquetKeyValues(split: DatasetSplit, signal?: AbortSignal): Promise<Record<string, string>> {
    const f = split.files.find((x) => x.format === 'parquet');
    if (!f) return {};
    const kv = (await this.parquet(f, signal)).metadata.key_value_metadata ?? [];
    return Object.fromEntries(kv.filter((x) => x.value !== undefined).map((x) => [x.key, x.value!]));
  }

  /**
   * The first `maxRows` rows of a split (all when maxRows is undefined), file by file in order; Parquet files are
   * read only as far as needed.
   */
  async rows(split: DatasetSplit, o: { maxRows?: number; signal?: AbortSignal } = {}): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
    const want = o.maxRows ?? Infinity;
    const rows: Record<string, unknown>[] = [];
    const columns: string[] = [];
    const addColumns = (names: string[]) => names.forEach((n) => columns.includes(n) || columns.push(n));
    for (const f of split.files) {
      if (rows.length >= want) break;
      const left = want - rows.length;
      if (f.format === 'parquet') {
        const { file, metadata } = await this.parquet(f, o.signal);
        addColumns(parquetSchema(metadata).children.map((c) => c.element.name));
        const n = Math.min(Number(metadata.num_rows), left);
        if (n <= 0) continue;
        try {
          rows.push(...(await parquetReadObjects({ file, metadata, rowStart: 0, rowEnd: n })).map(plainRow));
        } catch (e) {
          throw parquetError(this, f, e);
        }
      } else {
        const t = await this.readTextFile(f, o.signal);
        addColumns(t.columns);
        rows.push(...t.rows.slice(0, left));
      }
    }
    return { columns, rows };
  }

  /** A CSV / TSV / JSON / JSONL / TXT file of the repo, read whole. */
  private async readTextFile(f: DatasetFile, signal?: AbortSignal): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
    const res = await this.get(f.url, f.path, {}, signal);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const name = `${this.ref.repo}/${f.path}`;
    if (f.format === 'json') return parseJsonFile(name, decodeText(bytes, name, 'BAD_DATA'));
    const t = parseDataFile(name, bytes, f.format as DataFormat);
    return { columns: t.columns, rows: t.rows };
  }
}

/** Parquet values as plain JSON-like data: BigInt (INT64) as numbers, dates as ISO strings. */
function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  const fix = (v: unknown): unknown => {
    if (typeof v === 'bigint') return Number(v);
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map(fix);
    if (v && typeof v === 'object' && !(v instanceof Uint8Array)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x)]));
    return v;
  };
  return fix(row) as Record<string, unknown>;
}

function parquetError(d: HubDataset, f: DatasetFile, e: unknown): EngineError {
  if (e instanceof EngineError) return e;
  const m = e instanceof Error ? e.message : String(e);
  if (/compression|codec/i.test(m)) return new EngineError('BAD_DATA', `${d.ref.repo}/${f.path}: ${m}. PEFT Studio reads uncompressed and Snappy-compressed Parquet (the Hub's conversion uses Snappy).`);
  return new EngineError('BAD_DATA', `${d.ref.repo}/${f.path} is not a Parquet file PEFT Studio can read (${m.slice(0, 200)}).`);
}

// The tail read first: Parquet keeps its footer (schema, row groups) at the end, usually well under 64 KB.
const TAIL = 64 * 1024;

/** Opens a Parquet file over range requests: the first one reads the tail and learns the size (Content-Range). */
async function openParquet(d: HubDataset, f: DatasetFile, signal?: AbortSignal): Promise<{ file: AsyncBuffer; metadata: FileMetaData }> {
  const res = await d.get(f.url, f.path, { Range: `bytes=-${TAIL}` }, signal);
  const tail = new Uint8Array(await res.arrayBuffer());
  const m = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  const size = res.status === 206 && m ? Number(m[1]) : tail.length; // a 200 is the whole file
  const tailStart = size - tail.length;
  const file: AsyncBuffer = {
    byteLength: size,
    async slice(start: number, end = size) {
      if (start >= tailStart) return tail.slice(start - tailStart, end - tailStart).buffer;
      const r = await d.get(f.url, f.path, { Range: `bytes=${start}-${end - 1}` }, signal);
      const b = new Uint8Array(await r.arrayBuffer());
      // A server that ignores Range sends everything: keep the part asked for.
      return (r.status === 200 ? b.slice(start, end) : b).buffer;
    },
  };
  try {
    // The first read asks for the tail already held; a footer longer than that costs one more request.
    return { file, metadata: await parquetMetadataAsync(file, { initialFetchSize: Math.min(TAIL, size) }) };
  } catch (e) {
    throw parquetError(d, f, e);
  }
}

/** A .json data file: an array of row objects, an object holding one such array (e.g. {"data": [...]}), or JSON Lines. */
export function parseJsonFile(name: string, text: string): { columns: string[]; rows: Record<string, unknown>[] } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    const t = parseDataFile(name, text, 'jsonl'); // `datasets` reads line-delimited .json files too
    return { columns: t.columns, rows: t.rows };
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const arrays = Object.values(v).filter(Array.isArray);
    if (arrays.length === 1) v = arrays[0];
  }
  if (!Array.isArray(v) || !v.every((r) => r && typeof r === 'object' && !Array.isArray(r))) {
    throw new EngineError('BAD_DATA', `${name}: expected a JSON list of row objects (or JSON Lines), got ${quoteValue(v, 60)}.`);
  }
  const columns: string[] = [];
  for (const r of v as Record<string, unknown>[]) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  return { columns, rows: v as Record<string, unknown>[] };
}

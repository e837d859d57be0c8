/**
 * Download cache for Hub models: whole files for offline loads, and partial files so a cancelled or failed
 * download continues with a Range request instead of starting over (also after a page reload).
 *
 * One implementation (FolderCache) over a tiny storage backend, so the bookkeeping (layout, completeness,
 * listing, deletion) is written and tested once: memoryBackend here (tests, fallback), OPFS (opfs-cache.ts, the
 * browser/worker) and a folder on disk (node-cache.ts, the CLI). OPFS rather than Cache Storage because Cache
 * Storage stores whole Responses: it cannot append to a partial file or read a byte range without loading it all.
 *
 * Layout under the root (every segment percent-encoded, so names are safe on any file system):
 *   <endpoint>/<owner/name>/<revision>/files/<file>        bytes (complete or partial)
 *   <endpoint>/<owner/name>/<revision>/meta/<file>.json    {size, etag, complete}
 *   <endpoint>/<owner/name>/<revision>/manifest.json       written last: the whole model is cached
 */
import { EngineError } from '../errors';
import type { CacheKey, FileEntry, FileSource, OpenedStream } from './model-source';

export interface CacheBackend {
  /** Size in bytes, or null when absent. */
  size(path: string[]): Promise<number | null>;
  /** Bytes [start, end) of a file, or null when absent. */
  read(path: string[], start: number, end: number): Promise<Uint8Array | null>;
  /** Truncates the file to `at` bytes (creating it and its folders), then writes `bytes` there. */
  write(path: string[], bytes: Uint8Array, at: number): Promise<void>;
  /** Names in a folder; [] when absent. */
  list(path: string[]): Promise<string[]>;
  /** Removes a file or a folder with its contents; absent is fine. */
  remove(path: string[]): Promise<void>;
}

export interface CachedFileMeta {
  /** Full size of the file on the Hub. */
  size: number;
  etag: string | null;
}

export interface CachedFile {
  name: string;
  meta: CachedFileMeta;
  /** Bytes present (== meta.size when complete). */
  length: number;
  complete: boolean;
  read(start: number, end: number): Promise<Uint8Array>;
  /** The stored bytes from `start`, in chunks, so a large file is never read whole. */
  chunks(start?: number, signal?: AbortSignal): AsyncGenerator<Uint8Array>;
}

/** Appends a download to the cache, persisting at least every `checkpointBytes` so a reload loses little. */
export interface CacheWriter {
  readonly length: number;
  append(chunk: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /** Flushes, checks the size, and marks the file complete. */
  commit(): Promise<void>;
  /** Flushes what is buffered (after a cancel or failure the partial file stays for a resume). */
  close(): Promise<void>;
}

export interface CacheManifest {
  files: FileEntry[];
  commit: string | null;
  savedAt: string;
}

export interface CachedModelInfo {
  endpoint: string;
  repo: string;
  revision: string;
  files: { name: string; bytes: number; complete: boolean }[];
  bytes: number;
  /** Every file downloaded: loads offline. */
  complete: boolean;
  savedAt: string | null;
}

export interface ModelCache {
  /** A complete file, or null. */
  get(key: CacheKey, name: string): Promise<CachedFile | null>;
  /** Whatever is stored, complete or partial, or null. */
  getPartial(key: CacheKey, name: string): Promise<CachedFile | null>;
  put(key: CacheKey, name: string, bytes: Uint8Array, meta: CachedFileMeta): Promise<void>;
  /** Starts or continues (`at` = bytes already stored and verified) a streamed file. */
  writer(key: CacheKey, name: string, meta: CachedFileMeta, at: number): Promise<CacheWriter>;
  remove(key: CacheKey, name: string): Promise<void>;
  getManifest(key: CacheKey): Promise<CacheManifest | null>;
  putManifest(key: CacheKey, manifest: CacheManifest): Promise<void>;
  list(): Promise<CachedModelInfo[]>;
  /** Deletes a repo (every revision, or one), returning the bytes freed. */
  delete(repo: string, revision?: string, endpoint?: string): Promise<number>;
}

const CHUNK = 4 << 20;

/** Percent-encoding that also covers characters Windows or OPFS reject, and the names "." and "..". */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/\*/g, '%2A').replace(/^\.\.?$/, (m) => m.replace(/\./g, '%2E'));
}

function encEndpoint(endpoint: string): string {
  return enc(endpoint.replace(/^https:\/\//, ''));
}

function decEndpoint(s: string): string {
  const d = decodeURIComponent(s);
  return /^https?:\/\//.test(d) ? d : `https://${d}`;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of parts) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

const text = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

export class FolderCache implements ModelCache {
  constructor(readonly backend: CacheBackend, private readonly checkpointBytes = 8 << 20) {}

  private dir(key: CacheKey): string[] {
    return [encEndpoint(key.endpoint), enc(key.repo), enc(key.revision)];
  }

  private async readJson<T>(path: string[]): Promise<T | null> {
    const n = await this.backend.size(path);
    if (n === null) return null;
    const b = await this.backend.read(path, 0, n);
    try {
      return b ? (JSON.parse(new TextDecoder().decode(b)) as T) : null;
    } catch {
      return null; // a torn write: treat as absent, the file is downloaded again
    }
  }

  async getPartial(key: CacheKey, name: string): Promise<CachedFile | null> {
    const dir = this.dir(key);
    const path = [...dir, 'files', enc(name)];
    const length = await this.backend.size(path);
    const m = await this.readJson<CachedFileMeta & { complete?: boolean }>([...dir, 'meta', `${enc(name)}.json`]);
    if (length === null || !m || typeof m.size !== 'number') return null;
    const meta = { size: m.size, etag: m.etag ?? null };
    const backend = this.backend;
    const read = async (start: number, end: number) => {
      const b = await backend.read(path, start, end);
      if (!b || b.length !== end - start) throw new EngineError('HUB', `The cached copy of ${name} could not be read; delete it from the cache and load again.`);
      return b;
    };
    return {
      name, meta, length, complete: m.complete === true && length === m.size, read,
      async *chunks(start = 0, signal?: AbortSignal) {
        for (let p = start; p < length; p += CHUNK) {
          if (signal?.aborted) throw new EngineError('CANCELLED', `Reading ${name} from the cache was cancelled.`);
          yield await read(p, Math.min(length, p + CHUNK));
        }
      },
    };
  }

  async get(key: CacheKey, name: string): Promise<CachedFile | null> {
    const f = await this.getPartial(key, name);
    return f?.complete ? f : null;
  }

  async put(key: CacheKey, name: string, bytes: Uint8Array, meta: CachedFileMeta): Promise<void> {
    const dir = this.dir(key);
    await this.backend.write([...dir, 'files', enc(name)], bytes, 0);
    await this.backend.write([...dir, 'meta', `${enc(name)}.json`], text({ ...meta, complete: bytes.length === meta.size }), 0);
  }

  async writer(key: CacheKey, name: string, meta: CachedFileMeta, at: number): Promise<CacheWriter> {
    const dir = this.dir(key);
    const path = [...dir, 'files', enc(name)];
    const metaPath = [...dir, 'meta', `${enc(name)}.json`];
    const backend = this.backend;
    const checkpoint = this.checkpointBytes;
    await backend.write(path, new Uint8Array(0), at); // drops anything past `at`
    await backend.write(metaPath, text({ ...meta, complete: false }), 0);
    let persisted = at;
    let parts: Uint8Array[] = [];
    let buffered = 0;
    const flush = async () => {
      if (!buffered) return;
      const data = concat(parts, buffered);
      parts = [];
      buffered = 0;
      await backend.write(path, data, persisted);
      persisted += data.length;
    };
    return {
      get length() {
        return persisted + buffered;
      },
      async append(chunk) {
        parts.push(chunk);
        buffered += chunk.length;
        if (buffered >= checkpoint) await flush();
      },
      flush,
      async commit() {
        await flush();
        if (persisted !== meta.size) throw new EngineError('HUB', `${name}: stored ${persisted} bytes but the file has ${meta.size}.`);
        await backend.write(metaPath, text({ ...meta, complete: true }), 0);
      },
      close: flush,
    };
  }

  async remove(key: CacheKey, name: string): Promise<void> {
    const dir = this.dir(key);
    await this.backend.remove([...dir, 'files', enc(name)]);
    await this.backend.remove([...dir, 'meta', `${enc(name)}.json`]);
    await this.backend.remove([...dir, 'manifest.json']);
  }

  getManifest(key: CacheKey): Promise<CacheManifest | null> {
    return this.readJson<CacheManifest>([...this.dir(key), 'manifest.json']);
  }

  async putManifest(key: CacheKey, manifest: CacheManifest): Promise<void> {
    await this.backend.write([...this.dir(key), 'manifest.json'], text(manifest), 0);
  }

  async list(): Promise<CachedModelInfo[]> {
    const out: CachedModelInfo[] = [];
    const b = this.backend;
    for (const host of await b.list([])) {
      for (const repo of await b.list([host])) {
        for (const rev of await b.list([host, repo])) {
          const dir = [host, repo, rev];
          const files: CachedModelInfo['files'] = [];
          for (const f of await b.list([...dir, 'files'])) {
            const bytes = (await b.size([...dir, 'files', f])) ?? 0;
            const meta = await this.readJson<{ size: number; complete?: boolean }>([...dir, 'meta', `${f}.json`]);
            files.push({ name: decodeURIComponent(f), bytes, complete: !!meta?.complete && meta.size === bytes });
          }
          const manifest = await this.readJson<CacheManifest>([...dir, 'manifest.json']);
          out.push({
            endpoint: decEndpoint(host), repo: decodeURIComponent(repo), revision: decodeURIComponent(rev), files,
            bytes: files.reduce((a, f) => a + f.bytes, 0), complete: !!manifest, savedAt: manifest?.savedAt ?? null,
          });
        }
      }
    }
    return out;
  }

  async delete(repo: string, revision?: string, endpoint?: string): Promise<number> {
    let freed = 0;
    for (const m of await this.list()) {
      if (m.repo !== repo || (revision !== undefined && m.revision !== revision) || (endpoint !== undefined && m.endpoint !== endpoint)) continue;
      const repoDir = [encEndpoint(m.endpoint), enc(m.repo)];
      await this.backend.remove([...repoDir, enc(m.revision)]);
      if (!(await this.backend.list(repoDir)).length) await this.backend.remove(repoDir);
      freed += m.bytes;
    }
    return freed;
  }
}

/** Files kept in memory: tests, and the fallback where no persistent storage exists (lasts the session). */
export function memoryBackend(): CacheBackend {
  const files = new Map<string, { parts: Uint8Array[]; size: number }>();
  const k = (p: string[]) => p.join('/');
  return {
    async size(p) {
      return files.get(k(p))?.size ?? null;
    },
    async read(p, start, end) {
      const f = files.get(k(p));
      if (!f) return null;
      const whole = concat(f.parts, f.size);
      f.parts = [whole]; // coalesce once, so later range reads are cheap
      return whole.slice(start, Math.min(end, f.size));
    },
    async write(p, bytes, at) {
      const f = files.get(k(p)) ?? { parts: [], size: 0 };
      if (at > f.size) throw new Error(`memory cache: write at ${at} past the end (${f.size})`);
      if (at < f.size) f.parts = [concat(f.parts, f.size).slice(0, at)];
      if (bytes.length) f.parts.push(bytes.slice());
      f.size = at + bytes.length;
      files.set(k(p), f);
    },
    async list(p) {
      const prefix = p.length ? `${k(p)}/` : '';
      const names = new Set<string>();
      for (const key of files.keys()) if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]);
      return [...names];
    },
    async remove(p) {
      const key = k(p);
      for (const f of [...files.keys()]) if (f === key || f.startsWith(`${key}/`)) files.delete(f);
    },
  };
}

/** A ModelCache in memory. */
export function memoryCache(): FolderCache {
  return new FolderCache(memoryBackend());
}

/**
 * A source that reads a fully cached snapshot without any network request, or null when the cache does not
 * hold all of it (then the caller goes to the network, and cached files are still reused one by one).
 */
export async function cachedSource(cache: ModelCache, key: CacheKey): Promise<CacheSource | null> {
  const m = await cache.getManifest(key);
  if (!m) return null;
  for (const f of m.files) {
    const c = await cache.get(key, f.name);
    if (!c || c.length !== f.size) return null;
  }
  return new CacheSource(cache, key, m);
}

export class CacheSource implements FileSource {
  readonly kind = 'cache' as const;
  readonly label: string;
  readonly id: string;
  readonly revision: string;
  readonly commit: string | null;

  constructor(private readonly cache: ModelCache, readonly cacheKey: CacheKey, private readonly manifest: CacheManifest) {
    this.id = cacheKey.repo;
    this.revision = cacheKey.revision;
    this.commit = manifest.commit;
    this.label = `${cacheKey.repo}${cacheKey.revision === 'main' ? '' : `@${cacheKey.revision}`} (cached)`;
  }

  async list(): Promise<FileEntry[]> {
    return this.manifest.files.slice();
  }

  async stat(name: string): Promise<FileEntry | null> {
    return this.manifest.files.find((f) => f.name === name) ?? null;
  }

  private async file(name: string): Promise<CachedFile> {
    const f = await this.cache.get(this.cacheKey, name);
    if (!f) throw new EngineError('MISSING_WEIGHT', `${this.label}: ${name} is no longer in the cache; load the model again.`);
    return f;
  }

  async read(name: string): Promise<Uint8Array | null> {
    if (!(await this.stat(name))) return null;
    const f = await this.file(name);
    return f.read(0, f.length);
  }

  async readRange(name: string, start: number, end: number): Promise<Uint8Array> {
    return (await this.file(name)).read(start, end);
  }

  async stream(name: string, opts: { start: number; signal?: AbortSignal }): Promise<OpenedStream> {
    const f = await this.file(name);
    return { start: opts.start, size: f.length, etag: f.meta.etag, body: f.chunks(opts.start, opts.signal) };
  }
}

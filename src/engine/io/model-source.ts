/**
 * Where model files come from, behind one small interface, so that the Hub, a plain HTTP folder (the built-in
 * model), files the person picked or dropped, a folder on disk (CLI) and the download cache all go through the
 * same inspector (inspect.ts) and loader (download.ts). Framework-free: only fetch/Blob/ReadableStream, which
 * exist in browsers, Web Workers and Node 20.
 */
import { EngineError } from '../errors';
import { readJsonObject } from './text';

/** One file of a model repo or folder. */
export interface FileEntry {
  name: string;
  size: number;
}

/** A body being downloaded: where it starts (a server may ignore a Range and start at 0), the file size, ETag. */
export interface OpenedStream {
  start: number;
  size: number;
  etag: string | null;
  body: AsyncIterable<Uint8Array>;
}

/** Identifies a Hub snapshot in the cache: the same repo on another endpoint (a mirror) is cached apart. */
export interface CacheKey {
  endpoint: string;
  repo: string;
  revision: string;
}

export type SourceKind = 'hub' | 'url' | 'local' | 'cache';

export interface FileSource {
  readonly kind: SourceKind;
  /** How messages name the source, e.g. `openai-community/gpt2@main on https://huggingface.co`. */
  readonly label: string;
  /** What adapter_config.json's base_model_name_or_path should say (repo id or folder name). */
  readonly id: string;
  /** Hub revision, null for local sources. */
  readonly revision: string | null;
  /** Null: do not cache (files that are local already). */
  readonly cacheKey: CacheKey | null;
  /** Top-level files with sizes, or null when the source cannot list (a plain HTTP folder). */
  list(signal?: AbortSignal): Promise<FileEntry[] | null>;
  /** Size of one file, or null when it does not exist. */
  stat(name: string, signal?: AbortSignal): Promise<FileEntry | null>;
  /** A whole (small) file, or null when it does not exist. */
  read(name: string, signal?: AbortSignal): Promise<Uint8Array | null>;
  /** Bytes [start, end) of an existing file. */
  readRange(name: string, start: number, end: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Streams an existing file from byte `start` on. */
  /** `size`, when known (from inspection), stands in for a response that does not state it. */
  stream(name: string, opts: { start: number; signal?: AbortSignal; size?: number }): Promise<OpenedStream>;
}

/** Parses a JSON object file; absent -> null; bad JSON -> BAD_CONFIG naming the file and source. */
export async function readJson(source: FileSource, name: string, signal?: AbortSignal): Promise<Record<string, unknown> | null> {
  const bytes = await source.read(name, signal);
  return bytes ? parseJsonObject(bytes, name, source.label) : null;
}

/** Decoded (UTF-16 and binary files refused, see text.ts) and parsed; every failure names the file and source. */
export function parseJsonObject(bytes: Uint8Array, name: string, label: string): Record<string, unknown> {
  return readJsonObject(bytes, `${name} in ${label}`, 'BAD_CONFIG');
}

/**
 * Iterates a ReadableStream with a reader rather than `for await` on the stream itself: Safari has no async
 * iteration of ReadableStream. Leaving the loop early cancels the stream so the connection is released.
 */
export async function* iterateStream(rs: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = rs.getReader();
  let done = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        return;
      }
      if (r.value && r.value.length) yield r.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** Throws CANCELLED when the signal has fired (checked between steps that do not take a signal themselves). */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EngineError('CANCELLED', `${what} was cancelled.`);
}

function rangeCheck(label: string, name: string, size: number, start: number, end: number): void {
  if (!(start >= 0 && end >= start && end <= size)) {
    throw new EngineError('BAD_ARGUMENT', `${label}: byte range [${start}, ${end}) is outside ${name} (${size} bytes).`);
  }
}

/** A File (browser) or a Blob with a name; `webkitRelativePath` is set for files of a picked folder. */
export type NamedBlob = Blob & { readonly name: string; readonly webkitRelativePath?: string };

/** The parts of FileSystemDirectoryHandle (directory picker, drag-drop getAsFileSystemHandle) used here. */
export interface DirectoryHandleLike {
  readonly kind: 'directory';
  readonly name: string;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string; getFile?: () => Promise<Blob & { name: string }> }>;
}

/**
 * Files the person picked (file input, folder input), dropped, or chose with the directory picker. Files are
 * looked up by base name; with a picked folder only the top level counts, so `onnx/config.json` cannot shadow
 * `config.json`.
 */
export class LocalFilesSource implements FileSource {
  readonly kind = 'local' as const;
  readonly label: string;
  readonly id: string;
  readonly revision = null;
  readonly cacheKey = null;
  private readonly files = new Map<string, Blob>();

  constructor(files: Iterable<NamedBlob>, folderName?: string) {
    let folder = folderName;
    for (const f of files) {
      const parts = (f.webkitRelativePath || f.name).split('/').filter(Boolean);
      if (parts.length > 2) continue; // nested below the picked folder
      if (parts.length === 2) folder ??= parts[0];
      if (!this.files.has(f.name)) this.files.set(f.name, f);
    }
    this.id = folder || 'local files';
    this.label = folder ? `folder "${folder}"` : 'the chosen files';
  }

  /** From a directory handle: its top-level files only. */
  static async fromDirectoryHandle(dir: DirectoryHandleLike): Promise<LocalFilesSource> {
    const files: NamedBlob[] = [];
    for await (const h of dir.values()) {
      if (h.kind === 'file' && h.getFile) files.push(await h.getFile());
    }
    return new LocalFilesSource(files, dir.name);
  }

  private blob(name: string): Blob | null {
    return this.files.get(name) ?? null;
  }

  async list(): Promise<FileEntry[]> {
    return [...this.files].map(([name, b]) => ({ name, size: b.size }));
  }

  async stat(name: string): Promise<FileEntry | null> {
    const b = this.blob(name);
    return b ? { name, size: b.size } : null;
  }

  async read(name: string): Promise<Uint8Array | null> {
    const b = this.blob(name);
    return b ? new Uint8Array(await b.arrayBuffer()) : null;
  }

  async readRange(name: string, start: number, end: number): Promise<Uint8Array> {
    const b = this.blob(name);
    if (!b) throw new EngineError('MISSING_WEIGHT', `${this.label} has no ${name}.`);
    rangeCheck(this.label, name, b.size, start, end);
    return new Uint8Array(await b.slice(start, end).arrayBuffer());
  }

  async stream(name: string, opts: { start: number }): Promise<OpenedStream> {
    const b = this.blob(name);
    if (!b) throw new EngineError('MISSING_WEIGHT', `${this.label} has no ${name}.`);
    rangeCheck(this.label, name, b.size, opts.start, b.size);
    // Blob.stream() reads in modest chunks, so a multi-GB file is never held whole.
    return { start: opts.start, size: b.size, etag: null, body: iterateStream(b.slice(opts.start).stream() as ReadableStream<Uint8Array>) };
  }
}

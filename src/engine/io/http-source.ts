/**
 * Reading files over HTTP: plain GETs for small files, Range requests for safetensors headers and for resuming,
 * streamed bodies for weights. HttpSource serves a plain folder URL (the built-in model); hub.ts extends it with
 * the Hub's listing API and error codes. Framework-free: only fetch and ReadableStream.
 */
import { EngineError, describeError } from '../errors';
import { iterateStream, type CacheKey, type FileEntry, type FileSource, type OpenedStream } from './model-source';

/**
 * A failure talking to the Hub. `retryable` is true for network failures, timeouts, 429 and 5xx: the UI offers
 * "Retry" and the CLI says to run again (partial downloads are kept in the cache and continue).
 */
export class HubError extends EngineError {
  readonly status: number | null;
  readonly hubCode: string | null;
  readonly retryable: boolean;
  constructor(message: string, o: { status?: number | null; hubCode?: string | null; retryable?: boolean } = {}) {
    super('HUB', message);
    this.status = o.status ?? null;
    this.hubCode = o.hubCode ?? null;
    this.retryable = o.retryable ?? false;
  }
}

/** True when trying again may succeed (network failure, timeout, 429, 5xx). */
export function isRetryable(e: unknown): boolean {
  return e instanceof HubError && e.retryable;
}

/** What a worker posts to the page for any error: the class (and `retryable`) do not survive postMessage. */
export function errorInfo(e: unknown): { code: string; message: string; retryable: boolean } {
  return { code: e instanceof EngineError ? e.code : 'BACKEND', message: describeError(e), retryable: isRetryable(e) };
}

export function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

function contentRange(res: Response): { start: number; size: number | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
  return m ? { start: Number(m[1]), size: m[3] === '*' ? null : Number(m[3]) } : null;
}

/** Reads a body to `want` bytes (a server that ignored Range sends the whole file; stop early). */
async function readPrefix(res: Response, want: number): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let n = 0;
  for await (const c of iterateStream(res.body!)) {
    const take = Math.min(c.length, want - n);
    out.set(c.subarray(0, take), n);
    n += take;
    if (n >= want) break;
  }
  return n === want ? out : out.subarray(0, n);
}

interface HttpSourceInit {
  kind: 'hub' | 'url';
  label: string;
  id: string;
  revision: string | null;
  cacheKey: CacheKey | null;
  urlFor: (name: string) => string;
  fetch: FetchLike;
}

/** Files under a base URL, read with plain GETs and Range requests; cannot list (list() is null). */
export class HttpSource implements FileSource {
  readonly kind: 'hub' | 'url';
  readonly label: string;
  readonly id: string;
  readonly revision: string | null;
  readonly cacheKey: CacheKey | null;
  protected readonly urlFor: (name: string) => string;
  protected readonly fetchFn: FetchLike;

  constructor(o: HttpSourceInit) {
    this.kind = o.kind;
    this.label = o.label;
    this.id = o.id;
    this.revision = o.revision;
    this.cacheKey = o.cacheKey;
    this.urlFor = o.urlFor;
    this.fetchFn = o.fetch;
  }

  async list(_signal?: AbortSignal): Promise<FileEntry[] | null> {
    return null;
  }

  /** `noStore`: keep weight streams out of the browser's HTTP cache, or a model would be stored twice (there
   *  and in our cache), and a half-cached response could interfere with resuming. */
  protected async get(name: string, headers: Record<string, string>, signal?: AbortSignal, noStore = false): Promise<Response> {
    try {
      return await this.fetchFn(this.urlFor(name), { headers, signal, ...(noStore ? { cache: 'no-store' as const } : {}) });
    } catch (e) {
      if (signal?.aborted) throw new EngineError('CANCELLED', `Reading ${name} from ${this.label} was cancelled.`);
      if (e instanceof EngineError) throw e;
      throw this.networkError(name, e);
    }
  }

  networkError(name: string, e: unknown): HubError {
    const cause = (e as { cause?: { message?: string } })?.cause?.message;
    const detail = [(e as Error)?.message, cause].filter(Boolean).join(': ') || String(e);
    return new HubError(`Could not reach ${originOf(this.urlFor(name)) ?? this.label} to read ${name} of ${this.label} (${detail}). Check the connection${this.kind === 'hub' ? ' and the Hub URL setting' : ''}, then retry.`, { retryable: true });
  }

  /** A response that means "no such file". Vite and other dev servers answer unknown paths with index.html. */
  protected isAbsent(res: Response, name: string): boolean {
    if (res.status === 404 || res.status === 410) return true;
    return res.ok && this.kind === 'url' && !name.endsWith('.html') && (res.headers.get('content-type') ?? '').includes('text/html');
  }

  protected async httpError(res: Response, name: string | null): Promise<EngineError> {
    await res.body?.cancel().catch(() => undefined);
    const what = name ? `${name} of ${this.label}` : this.label;
    return new HubError(`Reading ${what} failed: HTTP ${res.status} ${res.statusText}`.trim() + '.', {
      status: res.status, retryable: res.status === 429 || res.status >= 500,
    });
  }

  private async missing(res: Response, name: string): Promise<EngineError> {
    await res.body?.cancel().catch(() => undefined);
    return new EngineError('MISSING_WEIGHT', `${this.label} has no ${name}.`);
  }

  async stat(name: string, signal?: AbortSignal): Promise<FileEntry | null> {
    const res = await this.get(name, { Range: 'bytes=0-0' }, signal);
    if (this.isAbsent(res, name)) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    if (res.status === 416) return { name, size: 0 }; // empty file: no byte 0
    if (!res.ok) throw await this.httpError(res, name);
    const size = res.status === 206 ? contentRange(res)?.size : Number(res.headers.get('content-length') ?? NaN);
    await res.body?.cancel().catch(() => undefined);
    if (size == null || !Number.isFinite(size)) throw new HubError(`${this.label} did not report the size of ${name}.`);
    return { name, size };
  }

  async read(name: string, signal?: AbortSignal): Promise<Uint8Array | null> {
    const res = await this.get(name, {}, signal);
    if (this.isAbsent(res, name)) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!res.ok) throw await this.httpError(res, name);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (signal?.aborted) throw new EngineError('CANCELLED', `Reading ${name} from ${this.label} was cancelled.`);
      throw this.networkError(name, e);
    }
  }

  async readRange(name: string, start: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    const res = await this.get(name, { Range: `bytes=${start}-${end - 1}` }, signal);
    if (this.isAbsent(res, name)) throw await this.missing(res, name);
    if (!res.ok) throw await this.httpError(res, name);
    const cr = contentRange(res);
    try {
      if (res.status === 206 && cr?.start === start) return await readPrefix(res, end - start);
      if (res.status === 200 && start === 0) return await readPrefix(res, end); // Range ignored: take the prefix
    } catch (e) {
      if (signal?.aborted) throw new EngineError('CANCELLED', `Reading ${name} from ${this.label} was cancelled.`);
      throw this.networkError(name, e);
    }
    await res.body?.cancel().catch(() => undefined);
    throw new HubError(`${this.label} does not support byte ranges for ${name} (HTTP ${res.status}), which reading headers first needs.`);
  }

  async stream(name: string, opts: { start: number; signal?: AbortSignal; size?: number }): Promise<OpenedStream> {
    const res = await this.get(name, opts.start > 0 ? { Range: `bytes=${opts.start}-` } : {}, opts.signal, true);
    if (this.isAbsent(res, name)) throw await this.missing(res, name);
    if (!res.ok || !res.body) throw await this.httpError(res, name);
    const etag = res.headers.get('etag');
    if (res.status === 206) {
      const cr = contentRange(res);
      if (!cr || cr.size === null) throw new HubError(`${this.label} sent a partial response for ${name} without its size.`);
      return { start: cr.start, size: cr.size, etag, body: iterateStream(res.body) };
    }
    // A compressed 200 (static servers gzip on the fly) has no Content-Length; the size read with the header
    // (opts.size) still holds, since the body decompresses to the file's bytes.
    const header = res.headers.get('content-length');
    const size = header !== null && !res.headers.get('content-encoding') ? Number(header) : (opts.size ?? NaN);
    if (!Number.isFinite(size)) throw new HubError(`${this.label} did not report the size of ${name}.`);
    return { start: 0, size, etag, body: iterateStream(res.body) };
  }
}

/** A plain folder URL ending in "/" (the built-in model in public/models/). Not cached: it is local already. */
export function urlSource(baseUrl: string, name: string, fetchImpl: FetchLike = (i, init) => fetch(i, init)): HttpSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return new HttpSource({
    kind: 'url', label: `"${name}"`, id: name, revision: null, cacheKey: null,
    urlFor: (f) => new URL(f.split('/').map(encodeURIComponent).join('/'), base).href, fetch: fetchImpl,
  });
}

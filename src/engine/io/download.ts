/**
 * Loads a model from any FileSource: config, tokenizer files and safetensors weights, streamed and decoded to
 * float32 as they arrive (stream-decode.ts), with progress, cancellation, automatic retries, and a cache that
 * keeps partial files so a later attempt continues with a Range request. A snapshot already complete in the
 * cache loads without any network request.
 */
import { EngineError } from '../errors';
import { resolveArchitecture } from '../models';
import type { TaskType } from '../models/types';
import { checkTokenizerFitsModel, checkTokenizerJson, tokenizerJsonVocabSize } from '../tokenizer';
import type { CacheWriter, ModelCache } from './cache';
import { HubError, isRetryable } from './http-source';
import { inspectModel, preferCache, type ModelInspection } from './inspect';
import { parseJsonObject, throwIfAborted, type CacheKey, type FileSource } from './model-source';
import type { LoadedTensor } from './safetensors';
import { SafetensorsStreamDecoder } from './stream-decode';

export interface DownloadProgress {
  file: string;
  fileLoaded: number;
  fileTotal: number;
  /** All files of the model together. Includes bytes reused from the cache. */
  loaded: number;
  total: number;
  /** Network speed over the last few seconds (0 while reading the cache). */
  bytesPerSec: number;
  fromCache: boolean;
}

export interface DownloadOptions {
  /** Where Hub files are kept; without one, nothing is reused across calls. */
  cache?: ModelCache | null;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** The result of inspectModel on the same source (header-first step), to skip reading headers again. */
  inspection?: ModelInspection;
  task?: TaskType;
  /** Automatic retries after a network failure, each continuing where the last stopped. Default 2. */
  retries?: number;
  retryDelayMs?: number;
  /** Ignore a complete cached snapshot and check the network (cached files are still reused). */
  refresh?: boolean;
  /** Abort a response that delivers nothing for this long (then retry). Default 30 s. */
  stallTimeoutMs?: number;
  /** Minimum time between progress events, except the last one of each file. Default 100 ms. */
  progressIntervalMs?: number;
}

export interface DownloadedModel {
  config: Record<string, unknown>;
  weights: Map<string, LoadedTensor>;
  tokenizerJson: Record<string, unknown> | null;
  tokenizerConfig: Record<string, unknown> | null;
  specialTokensMap: Record<string, unknown> | null;
  generationConfig: Record<string, unknown> | null;
  inspection: ModelInspection;
  /** Repo id or folder name (adapter_config.json base_model_name_or_path), and the revision. */
  id: string;
  revision: string | null;
  /** Names of the files read. */
  files: string[];
  weightBytes: number;
  /** True when nothing came from the network. */
  fromCache: boolean;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

const fmtMs = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`);

/** An error's message with its cause (Node's fetch says "terminated", the cause says "other side closed"). */
function describe(e: unknown): string {
  const cause = (e as { cause?: { message?: string; code?: string } })?.cause;
  const c = cause?.message ?? cause?.code;
  return [(e as Error)?.message ?? String(e), c].filter(Boolean).join(': ');
}

class Progress {
  loaded = 0;
  private samples: [number, number][] = [];
  private last = 0;
  constructor(readonly total: number, private readonly cb: ((p: DownloadProgress) => void) | undefined, private readonly interval: number) {}

  add(file: string, fileLoaded: number, fileTotal: number, n: number, fromCache: boolean, force = false): void {
    this.loaded += n;
    const now = Date.now();
    if (!fromCache && n > 0) this.samples.push([now, n]);
    while (this.samples.length && now - this.samples[0][0] > 3000) this.samples.shift();
    if (!this.cb || (!force && now - this.last < this.interval)) return;
    this.last = now;
    const span = this.samples.length ? Math.max(now - this.samples[0][0], 250) : 1;
    const bytes = this.samples.reduce((a, s) => a + s[1], 0);
    this.cb({ file, fileLoaded, fileTotal, loaded: this.loaded, total: this.total, bytesPerSec: fromCache ? 0 : (bytes * 1000) / span, fromCache });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(new EngineError('CANCELLED', 'Download cancelled.'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Cache writes fail for storage reasons (quota, disk full), not network ones: say so, and do not retry. */
async function storing<T>(name: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new EngineError('HUB', `Could not store ${name} in the model cache (${describe(e)}). Free some disk space or delete cached models, then retry.`);
  }
}

/** Loads config, tokenizer files and weights; see DownloadOptions. */
export async function downloadModel(source: FileSource, opts: DownloadOptions = {}): Promise<DownloadedModel> {
  const { cache, signal } = opts;
  const src = await preferCache(source, cache, opts.refresh);
  const fromCache = src.kind === 'cache';
  // Reuse the header-first result when it was read from the same place (network or cache) as this load.
  const insp = opts.inspection && opts.inspection.fromCache === fromCache ? opts.inspection : await inspectModel(src, { task: opts.task, signal });
  const key: CacheKey | null = cache && !fromCache ? src.cacheKey : null;
  const progress = new Progress(insp.downloadBytes, opts.onProgress, opts.progressIntervalMs ?? 100);

  const json = new Map<string, Record<string, unknown>>();
  const weightNames = new Set(insp.weightFiles.map((w) => w.name));
  for (const f of insp.files) {
    if (weightNames.has(f.name)) continue;
    throwIfAborted(signal, `Loading ${src.label}`);
    let bytes: Uint8Array | null = null;
    const cached = key ? await cache!.get(key, f.name) : null;
    if (cached) bytes = await cached.read(0, cached.length);
    else {
      bytes = await src.read(f.name, signal);
      if (!bytes) throw new EngineError('BAD_CONFIG', `${src.label}: ${f.name} disappeared while loading; try again.`);
      if (key) await storing(f.name, () => cache!.put(key, f.name, bytes!, { size: bytes!.length, etag: null }));
    }
    json.set(f.name, parseJsonObject(bytes, f.name, src.label));
    progress.add(f.name, bytes.length, bytes.length, f.size, !!cached || fromCache, true);
  }
  // A tokenizer the model cannot use fails here, before the weights download, rather than mid-training.
  const tokJson = json.get('tokenizer.json');
  if (tokJson) {
    const where = `tokenizer.json in ${src.label}`;
    checkTokenizerJson(tokJson, where);
    const n = tokenizerJsonVocabSize(tokJson);
    if (n !== null) checkTokenizerFitsModel(n, resolveArchitecture(insp.config, opts.task).config.vocabSize, where, `config.json in ${src.label}`);
  }

  const weights = new Map<string, LoadedTensor>();
  for (const w of insp.weightFiles) {
    const tensors = await fetchWeights(src, w.name, w.size, { ...opts, key, progress, fromCache });
    if (!insp.index) {
      for (const [k, t] of tensors) weights.set(k, t);
      continue;
    }
    // Like loadModelDir: listed tensors come from the shard the index names; unlisted extras are kept too.
    for (const [k, t] of tensors) if (insp.index[k] === w.name || !(k in insp.index)) weights.set(k, t);
  }
  if (insp.index) {
    for (const [t, shard] of Object.entries(insp.index)) {
      if (!weights.has(t)) throw new EngineError('MISSING_WEIGHT', `${src.label}: tensor '${t}' is assigned to ${shard} by the index but is not in it.`);
    }
  }
  if (key) await cache!.putManifest(key, { files: insp.files, commit: insp.commit ?? (src as { commit?: string | null }).commit ?? null, savedAt: new Date().toISOString() });

  return {
    config: insp.config, weights,
    tokenizerJson: json.get('tokenizer.json') ?? null,
    tokenizerConfig: json.get('tokenizer_config.json') ?? null,
    specialTokensMap: json.get('special_tokens_map.json') ?? null,
    generationConfig: json.get('generation_config.json') ?? null,
    inspection: insp, id: src.id, revision: src.revision,
    files: insp.files.map((f) => f.name),
    weightBytes: insp.weightFiles.reduce((a, w) => a + w.size, 0),
    fromCache,
  };
}

/** Alias under the name the studio and CLI use: every source goes through this one loader. */
export const loadModel = downloadModel;

interface FetchCtx extends DownloadOptions {
  key: CacheKey | null;
  progress: Progress;
  fromCache: boolean;
}

/** Streams one weight file into a decoder (and the cache), resuming from cached or already received bytes. */
async function fetchWeights(src: FileSource, name: string, size: number, ctx: FetchCtx): Promise<Map<string, LoadedTensor>> {
  const { cache, key, signal, progress } = ctx;
  let dec = new SafetensorsStreamDecoder(name, size);
  let etag: string | null = null;
  const report = (n: number, fromCache: boolean, force = false) => progress.add(name, dec.consumed, size, n, fromCache, force);

  if (key) {
    const c = await cache!.getPartial(key, name);
    if (c && c.meta.size === size && c.length <= size) {
      try {
        for await (const chunk of c.chunks(0, signal)) {
          dec.push(chunk);
          report(chunk.length, true);
        }
        etag = c.meta.etag;
        if (c.complete) {
          report(0, true, true);
          return dec.finish();
        }
      } catch (e) {
        if (signal?.aborted || (e instanceof EngineError && e.code === 'CANCELLED')) throw e;
        await cache!.remove(key, name); // unreadable or corrupt: start over
        dec = new SafetensorsStreamDecoder(name, size);
        etag = null;
      }
    } else if (c) {
      await cache!.remove(key, name);
    }
  }

  const retries = ctx.retries ?? 2;
  let writer: CacheWriter | null = null;
  let attempt = 0;
  let restarts = 0;
  try {
    for (;;) {
      if (dec.consumed === size) break;
      const inner = new AbortController();
      const onAbort = () => inner.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let stalled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => ((stalled = true), inner.abort()), ctx.stallTimeoutMs ?? 30_000);
      };
      try {
        throwIfAborted(signal, `Downloading ${name}`);
        arm();
        const s = await src.stream(name, { start: dec.consumed, signal: inner.signal, size });
        if (s.size !== size) {
          throw new HubError(`${name} of ${src.label} changed on the server while loading (${s.size} bytes, expected ${size}); load the model again.`);
        }
        const changed = dec.consumed > 0 && s.start === dec.consumed && !!etag && !!s.etag && s.etag !== etag;
        if (s.start !== dec.consumed || changed) {
          // The server ignored the Range (a 200 from byte 0) or the file changed since the partial copy was
          // saved (another ETag): begin again from byte 0.
          if (++restarts > 3) {
            inner.abort();
            throw new HubError(`${name} of ${src.label} keeps changing while downloading; try again later.`);
          }
          dec = new SafetensorsStreamDecoder(name, size);
          await writer?.close();
          writer = null;
          if (s.start !== 0) {
            inner.abort(); // drop this response; the next request starts at 0
            continue;
          }
        }
        etag = s.etag;
        if (key) writer ??= await storing(name, () => cache!.writer(key, name, { size, etag }, dec.consumed));
        for await (const chunk of s.body) {
          arm();
          dec.push(chunk);
          if (writer) await storing(name, () => writer!.append(chunk));
          report(chunk.length, ctx.fromCache);
        }
        if (dec.consumed < size) throw new TypeError(`the connection closed after ${mb(dec.consumed)} of ${mb(size)}`);
      } catch (e) {
        if (signal?.aborted) {
          await writer?.close().catch(() => undefined);
          const kept = key ? ` ${mb(dec.consumed)} of ${mb(size)} are kept, and loading again continues from there.` : '';
          throw new EngineError('CANCELLED', `Download of ${name} from ${src.label} was cancelled.${kept}`);
        }
        // A stall aborts our own controller, which surfaces as a cancellation: it is a network failure.
        const err = stalled ? new HubError(`no data arrived for ${fmtMs(ctx.stallTimeoutMs ?? 30_000)}`, { retryable: true })
          : e instanceof EngineError ? e
          : src.kind === 'hub' || src.kind === 'url' ? new HubError(describe(e), { retryable: true })
          : e;
        if (!isRetryable(err) || attempt >= retries) {
          await writer?.close().catch(() => undefined);
          if (!isRetryable(err)) {
            if (err instanceof EngineError && err.code === 'BAD_SAFETENSORS' && key) await cache!.remove(key, name);
            throw err;
          }
          throw new HubError(
            `Network failure while downloading ${name} from ${src.label} (${(err as Error).message.replace(/\.$/, '')}). ` +
              (key ? `${mb(dec.consumed)} of ${mb(size)} are kept: retry to continue from ${mb(dec.consumed)}.` : 'Retry to download it again.'),
            { retryable: true },
          );
        }
        attempt++;
        await writer?.flush().catch(() => undefined);
        await sleep((ctx.retryDelayMs ?? 1000) * attempt, signal);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    }
    if (writer) await storing(name, () => writer!.commit());
    else if (key && !ctx.fromCache) {
      // Everything came from a partial cache entry that was already whole: mark it complete.
      await (await cache!.writer(key, name, { size, etag }, size)).commit();
    }
  } finally {
    await writer?.close().catch(() => undefined);
  }
  report(0, ctx.fromCache, true);
  return dec.finish();
}

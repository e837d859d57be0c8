/**
 * Loading models from the Hub, header first, against a stand-in Hub on 127.0.0.1 (test/support/hub-server.ts):
 * repo ids, inspection from headers only, streamed download with progress and F16/BF16 conversion, cancel and
 * resume with Range requests, the cache (offline second load, list, delete), tokens (gated repos, never sent
 * to another origin), every error a person can hit, local sources through the same loader, memory estimates.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rejection } from './helpers';
import { EngineError } from '../src/engine/errors';
import { FolderCache, cachedSource, memoryBackend, memoryCache, type CacheBackend } from '../src/engine/io/cache';
import { downloadModel, type DownloadProgress } from '../src/engine/io/download';
import { HubClient, HubError, errorInfo, normalizeEndpoint, parseRepoId, urlSource } from '../src/engine/io/hub';
import { inspectModel } from '../src/engine/io/inspect';
import { LocalFilesSource } from '../src/engine/io/model-source';
import { nodeFsBackend, openNodeCache } from '../src/engine/io/node-cache';
import { loadModelDir } from '../src/engine/io/node-files';
import { NodeDirSource, hubSettingsFromEnv, openModelSource } from '../src/engine/io/node-source';
import { openBrowserCache, opfsBackend } from '../src/engine/io/opfs-cache';
import { readSafetensors, type LoadedTensor } from '../src/engine/io/safetensors';
import { SUPPORTED_MODEL_TYPES, moduleTree } from '../src/engine/models';
import { fakeOpfs } from './support/fake-opfs';
import { halfPrecisionCopy, shardedCopy } from './support/hub-fixtures';
import { startHubServer, type HubServer } from './support/hub-server';

const FX = join(import.meta.dirname, 'fixtures/models');
const fx = (n: string) => join(FX, n);
const PARAMS: Record<string, number> = { 'gpt2-tiny': 172288, 'gpt2-tiny-seqcls': 172416, 'llama-tiny': 202048, 'bert-tiny-seqcls': 143682 };
const TOKEN = 'hf_test_token';

function expectSameWeights(got: Map<string, LoadedTensor>, want: Map<string, LoadedTensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    expect(got.get(k)!.shape, k).toEqual(t.shape);
    expect(got.get(k)!.data, k).toEqual(t.data);
  }
}

describe('repo ids and settings', () => {
  it('parses owner/name, @revision, legacy names and page URLs', () => {
    expect(parseRepoId('openai-community/gpt2')).toEqual({ repo: 'openai-community/gpt2', revision: 'main' });
    expect(parseRepoId(' Qwen/Qwen2.5-0.5B@v1.0 ')).toEqual({ repo: 'Qwen/Qwen2.5-0.5B', revision: 'v1.0' });
    expect(parseRepoId('HuggingFaceTB/SmolLM2-135M@refs/pr/3')).toEqual({ repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'refs/pr/3' });
    expect(parseRepoId('gpt2')).toEqual({ repo: 'gpt2', revision: 'main' });
    expect(parseRepoId('https://huggingface.co/google-bert/bert-base-uncased/tree/abc123')).toEqual({ repo: 'google-bert/bert-base-uncased', revision: 'abc123' });
    for (const bad of ['', 'a/b/c', 'a b/c', '/x', 'a/b@', 'a--b/c', 'a/.b', 'a/b@x y', 'a/b@../x']) {
      expect(() => parseRepoId(bad), bad).toThrow(/not a Hub model id.*owner\/name/);
    }
  });

  it('normalizes the endpoint and reads HF_ENDPOINT / HF_TOKEN', () => {
    expect(normalizeEndpoint('')).toBe('https://huggingface.co');
    expect(normalizeEndpoint('https://hf-mirror.com/')).toBe('https://hf-mirror.com');
    expect(() => normalizeEndpoint('ftp://x')).toThrow(/https:\/\//);
    expect(hubSettingsFromEnv({ HF_ENDPOINT: 'http://127.0.0.1:9/', HF_TOKEN: 'hf_a' })).toEqual({ endpoint: 'http://127.0.0.1:9', token: 'hf_a' });
    expect(hubSettingsFromEnv({})).toEqual({ endpoint: 'https://huggingface.co', token: null });
    expect(openModelSource(fx('gpt2-tiny')).kind).toBe('local');
    expect(openModelSource('owner/name@dev', { env: { HF_ENDPOINT: 'http://127.0.0.1:9' } }).label).toBe('owner/name@dev on http://127.0.0.1:9');
  });

  it('keeps the token out of serialization', () => {
    const c = new HubClient({ token: TOKEN });
    expect(JSON.stringify(c)).not.toContain(TOKEN);
    expect(c.hasToken).toBe(true);
  });
});

describe('stand-in Hub', () => {
  let hub: HubServer;
  let client: HubClient;
  const since = (mark: number) => hub.requests.slice(mark);

  beforeAll(async () => {
    const sharded = shardedCopy(fx('gpt2-tiny'));
    const missingShard = { ...sharded };
    delete missingShard['model-00002-of-00002.safetensors'];
    hub = await startHubServer({
      repos: {
        ...Object.fromEntries(Object.keys(PARAMS).map((n) => [`fixtures/${n}`, { dir: fx(n), revisions: { v1: { dir: fx(n) } } }])),
        'fixtures/gated-gpt2': { dir: fx('gpt2-tiny'), gated: TOKEN },
        'fixtures/gpt2-f16': { files: halfPrecisionCopy(fx('gpt2-tiny'), ['transformer.wpe.weight']) },
        'fixtures/gpt2-sharded': { files: sharded },
        'fixtures/gpt2-missing-shard': { files: missingShard },
        'fixtures/pytorch-only': { files: { 'config.json': readFileSync(join(fx('gpt2-tiny'), 'config.json')), 'pytorch_model.bin': new Uint8Array(64) } },
        'fixtures/t5': { files: { 'config.json': JSON.stringify({ model_type: 'mamba', d_model: 64 }), 'model.safetensors': new Uint8Array(16) } },
      },
    });
    client = new HubClient({ endpoint: hub.url });
  });
  afterAll(() => hub.close());

  it('speaks the Hub protocol: HEAD, ranges, LFS redirects, error codes', async () => {
    const base = `${hub.url}/fixtures/gpt2-tiny/resolve/main`;
    const head = await fetch(`${base}/config.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toMatch(/^"[0-9a-f]{40}"$/);
    expect(Number(head.headers.get('content-length'))).toBe(readFileSync(join(fx('gpt2-tiny'), 'config.json')).length);
    const lfs = await fetch(`${base}/model.safetensors`, { method: 'HEAD', redirect: 'manual' });
    expect(lfs.status).toBe(302);
    expect(lfs.headers.get('location')).toContain('/cdn/');
    const part = await fetch(`${base}/model.safetensors`, { headers: { Range: 'bytes=0-7' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toMatch(/^bytes 0-7\/\d+$/);
    expect((await part.arrayBuffer()).byteLength).toBe(8);
    const missing = await fetch(`${base}/nope.json`);
    expect([missing.status, missing.headers.get('x-error-code')]).toEqual([404, 'EntryNotFound']);
  });

  it('inspects from config.json and safetensors headers only (range reads)', async () => {
    for (const [name, params] of Object.entries(PARAMS)) {
      const mark = hub.requests.length;
      const insp = await inspectModel(client.source(`fixtures/${name}`));
      const config = JSON.parse(readFileSync(join(fx(name), 'config.json'), 'utf8'));
      expect(insp.tree).toEqual(moduleTree(config));
      expect(insp.totalParams).toBe(params);
      expect(insp.weightFiles.map((w) => w.name)).toEqual(['model.safetensors']);
      const size = readFileSync(join(fx(name), 'model.safetensors')).length;
      expect(insp.downloadBytes).toBeGreaterThan(size);
      const weightReqs = since(mark).filter((r) => r.path.endsWith('model.safetensors'));
      expect(weightReqs.length).toBeGreaterThan(0);
      expect(weightReqs.every((r) => r.range !== null)).toBe(true);
      const fetched = weightReqs.reduce((a, r) => a + r.bytes, 0);
      expect(fetched).toBeLessThan(size / 8);
    }
  });

  it('downloads with monotonic progress ending at the total, equal to the local loader', async () => {
    const events: DownloadProgress[] = [];
    const m = await downloadModel(client.source('fixtures/gpt2-tiny'), { onProgress: (p) => events.push(p), progressIntervalMs: 0 });
    expectSameWeights(m.weights, loadModelDir(fx('gpt2-tiny')).tensors);
    expect(m.generationConfig).toMatchObject({ bos_token_id: 50256 });
    expect(m.files).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    for (let i = 1; i < events.length; i++) expect(events[i].loaded).toBeGreaterThanOrEqual(events[i - 1].loaded);
    const last = events[events.length - 1];
    expect(last.loaded).toBe(last.total);
    expect(last.total).toBe(m.inspection.downloadBytes);
    expect(events.some((e) => e.file === 'model.safetensors' && e.fileLoaded === e.fileTotal)).toBe(true);
  });

  it('converts F16 and BF16 to float32 while streaming, in chunks that split elements', async () => {
    hub.setThrottle({ chunkBytes: 1001, delayMs: 0 });
    try {
      const insp = await inspectModel(client.source('fixtures/gpt2-f16'));
      expect(insp.dtypes.BF16).toBe(128 * 64);
      expect(insp.notes.join(' ')).toMatch(/16-bit floats/);
      const m = await downloadModel(client.source('fixtures/gpt2-f16'), { inspection: insp });
      const whole = readSafetensors(halfPrecisionCopy(fx('gpt2-tiny'), ['transformer.wpe.weight'])['model.safetensors']).tensors;
      expectSameWeights(m.weights, whole);
      for (const [k, ref] of loadModelDir(fx('gpt2-tiny')).tensors) {
        const got = m.weights.get(k)!;
        const tol = got.dtype === 'BF16' ? 2 ** -7 : 2 ** -10;
        const a = got.data as Float32Array;
        const b = ref.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) - (Math.abs(b[i]) * tol + 1e-7));
        expect(worst, k).toBeLessThanOrEqual(0);
      }
    } finally {
      hub.setThrottle(null);
    }
  });

  it('cancels mid-file and resumes with a Range request from the partial length', async () => {
    const cache = memoryCache();
    const src = client.source('fixtures/llama-tiny');
    hub.setThrottle({ chunkBytes: 16384, delayMs: 2 });
    const ac = new AbortController();
    const err = await rejection(downloadModel(src, {
      cache, signal: ac.signal, progressIntervalMs: 0,
      onProgress: (p) => p.file === 'model.safetensors' && p.fileLoaded > 200_000 && ac.abort(),
    }));
    hub.setThrottle(null);
    expect(err.code).toBe('CANCELLED');
    expect(err.message).toMatch(/cancelled.*continues from there/);
    const partial = await cache.getPartial(src.cacheKey, 'model.safetensors');
    expect(partial!.complete).toBe(false);
    expect(partial!.length).toBeGreaterThan(200_000);
    const mark = hub.requests.length;
    const events: DownloadProgress[] = [];
    const m = await downloadModel(src, { cache, onProgress: (p) => events.push(p), progressIntervalMs: 0 });
    expectSameWeights(m.weights, loadModelDir(fx('llama-tiny')).tensors);
    const ranged = since(mark).filter((r) => r.path.endsWith('model.safetensors') && r.status === 206 && !/^bytes=0-/.test(r.range!));
    expect(ranged.map((r) => r.range)).toContain(`bytes=${partial!.length}-`);
    expect(events.some((e) => e.fromCache && e.file === 'model.safetensors')).toBe(true);
    expect(events[events.length - 1].loaded).toBe(events[events.length - 1].total);
  });

  it('reports a mid-download network failure with a retry that continues, and retries by itself', async () => {
    const cache = memoryCache();
    const src = client.source('fixtures/bert-tiny-seqcls');
    hub.cutAfter('model.safetensors', 300_000);
    const err = await rejection(downloadModel(src, { cache, retries: 0 }));
    expect(err).toBeInstanceOf(HubError);
    expect(errorInfo(err)).toMatchObject({ code: 'HUB', retryable: true });
    expect(err.message).toMatch(/Network failure while downloading model\.safetensors.*0\.3 MB of 0\.6 MB are kept: retry to continue from 0\.3 MB/);
    const mark = hub.requests.length;
    const m = await downloadModel(src, { cache });
    expectSameWeights(m.weights, loadModelDir(fx('bert-tiny-seqcls')).tensors);
    expect(since(mark).some((r) => r.range === 'bytes=300000-')).toBe(true);

    hub.cutAfter('model.safetensors', 100_000);
    const mark2 = hub.requests.length;
    const again = await downloadModel(client.source('fixtures/gpt2-tiny-seqcls'), { retries: 1, retryDelayMs: 5 });
    expectSameWeights(again.weights, loadModelDir(fx('gpt2-tiny-seqcls')).tensors);
    expect(since(mark2).some((r) => r.range === 'bytes=100000-')).toBe(true);

    hub.setThrottle({ chunkBytes: 65536, delayMs: 400 });
    try {
      const stall = await rejection(downloadModel(client.source('fixtures/gpt2-tiny'), { retries: 0, stallTimeoutMs: 100 }));
      expect(stall.message).toMatch(/no data arrived for 100 ms.*Retry/);
      expect((stall as HubError).retryable).toBe(true);
    } finally {
      hub.setThrottle(null);
    }
  });

  it('maps a missing repo and a missing revision to different messages', async () => {
    const repo = await rejection(inspectModel(client.source('fixtures/nope')));
    expect(repo.code).toBe('HUB');
    expect(repo.message).toMatch(/Repository fixtures\/nope was not found on http:\/\/127\.0\.0\.1:\d+\. Check the id.*private, add an access token/);
    const rev = await rejection(inspectModel(client.source('fixtures/gpt2-tiny@nope')));
    expect(rev.message).toMatch(/Revision "nope" was not found in fixtures\/gpt2-tiny/);
    expect((await inspectModel(client.source('fixtures/gpt2-tiny@v1'))).revision).toBe('v1');
  });

  it('explains gated repos (401 without token, 403 without access) and works with the token', async () => {
    const page = `${hub.url}/fixtures/gated-gpt2`;
    const none = await rejection(inspectModel(client.source('fixtures/gated-gpt2')));
    expect(none.message).toContain(page);
    expect(none.message).toMatch(/gated model.*access token/);
    expect((none as HubError).status).toBe(401);
    const wrong = await rejection(inspectModel(new HubClient({ endpoint: hub.url, token: 'hf_other' }).source('fixtures/gated-gpt2')));
    expect((wrong as HubError).status).toBe(403);
    expect(wrong.message).toMatch(/no access.*request access at/);
    const ok = await inspectModel(new HubClient({ endpoint: hub.url, token: TOKEN }).source('fixtures/gated-gpt2'));
    expect(ok.totalParams).toBe(PARAMS['gpt2-tiny']);
  });

  it('says only safetensors are supported, lists supported architectures, and names a missing shard', async () => {
    const pt = await rejection(inspectModel(client.source('fixtures/pytorch-only')));
    expect(pt.code).toBe('MISSING_WEIGHT');
    expect(pt.message).toMatch(/only PyTorch \.bin weights.*only safetensors/);
    const t5 = await rejection(inspectModel(client.source('fixtures/t5')));
    expect(t5.code).toBe('UNSUPPORTED_ARCHITECTURE');
    expect(t5.message).toContain(`"mamba"`);
    for (const t of SUPPORTED_MODEL_TYPES) expect(t5.message).toContain(t);
    const shard = await rejection(inspectModel(client.source('fixtures/gpt2-missing-shard')));
    expect(shard.code).toBe('MISSING_WEIGHT');
    expect(shard.message).toMatch(/lists the shard model-00002-of-00002\.safetensors, but it is not in the repo/);
    const m = await downloadModel(client.source('fixtures/gpt2-sharded'));
    expectSameWeights(m.weights, loadModelDir(fx('gpt2-tiny')).tensors);
    expect(m.inspection.weightFiles).toHaveLength(2);
  });

  it('caches in OPFS from a worker and loads offline from it', async () => {
    vi.stubGlobal('navigator', { storage: { getDirectory: async () => fakeOpfs(true) } });
    try {
      const { cache, persistent } = await openBrowserCache();
      expect(persistent).toBe(true);
      const src = client.source('fixtures/gpt2-tiny-seqcls');
      await downloadModel(src, { cache });
      const mark = hub.requests.length;
      const again = await downloadModel(src, { cache });
      expect([again.fromCache, hub.requests.length]).toEqual([true, mark]);
      expectSameWeights(again.weights, loadModelDir(fx('gpt2-tiny-seqcls')).tensors);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('loads a plain folder URL (no listing) and local files through the same loader', async () => {
    const ref = loadModelDir(fx('gpt2-tiny')).tensors;
    const viaUrl = await downloadModel(urlSource(`${hub.url}/fixtures/gpt2-tiny/resolve/main/`, 'gpt2-tiny'));
    expectSameWeights(viaUrl.weights, ref);
    expect(viaUrl.id).toBe('gpt2-tiny');
    const fromDir = await downloadModel(new NodeDirSource(fx('llama-tiny')));
    expectSameWeights(fromDir.weights, loadModelDir(fx('llama-tiny')).tensors);
    const files = readdirSync(fx('bert-tiny-seqcls')).map((n) => new File([readFileSync(join(fx('bert-tiny-seqcls'), n))], n));
    const picked = await downloadModel(new LocalFilesSource(files, 'bert-tiny-seqcls'));
    expectSameWeights(picked.weights, loadModelDir(fx('bert-tiny-seqcls')).tensors);
    expect(picked.id).toBe('bert-tiny-seqcls');
  });
});

describe('cache and tokens across origins', () => {
  it('loads a second time from the cache folder with the server gone; lists and deletes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peft-hub-cache-'));
    try {
      const hub = await startHubServer({ repos: { 'fixtures/llama-tiny': { dir: fx('llama-tiny') } } });
      const cache = openNodeCache(dir);
      const src = new HubClient({ endpoint: hub.url }).source('fixtures/llama-tiny');
      const first = await downloadModel(src, { cache });
      expect(first.fromCache).toBe(false);
      await hub.close();
      const mark = hub.requests.length;
      const second = await downloadModel(src, { cache });
      expect(second.fromCache).toBe(true);
      expect(hub.requests.length).toBe(mark);
      expectSameWeights(second.weights, loadModelDir(fx('llama-tiny')).tensors);
      expect((await inspectModel(src).catch((e) => e)).code).toBe('HUB'); // without the cache it needs the network
      const offline = await inspectModel(src, { cache });
      expect([offline.fromCache, offline.totalParams]).toEqual([true, PARAMS['llama-tiny']]);
      const [entry] = await cache.list();
      expect(entry).toMatchObject({ repo: 'fixtures/llama-tiny', revision: 'main', endpoint: hub.url, complete: true, bytes: first.inspection.downloadBytes });
      expect(await cache.delete('fixtures/llama-tiny')).toBe(first.inspection.downloadBytes);
      expect(await cache.list()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends the token to the Hub origin only, never to the CDN it redirects to', async () => {
    const hub = await startHubServer({ repos: { 'fixtures/gated-gpt2': { dir: fx('gpt2-tiny'), gated: TOKEN } }, redirectLfs: 'cross-origin' });
    try {
      expect(hub.cdnUrl).not.toBe(hub.url);
      const m = await downloadModel(new HubClient({ endpoint: hub.url, token: TOKEN }).source('fixtures/gated-gpt2'));
      expectSameWeights(m.weights, loadModelDir(fx('gpt2-tiny')).tensors);
      const cdn = hub.requests.filter((r) => r.server === 'cdn');
      expect(cdn.length).toBeGreaterThan(0);
      expect(cdn.every((r) => r.authorization === null)).toBe(true);
      expect(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    } finally {
      await hub.close();
    }
  });

  it('falls back to an in-memory cache where OPFS does not exist', async () => {
    const { cache, persistent } = await openBrowserCache();
    expect(persistent).toBe(false);
    expect(await cache.list()).toEqual([]);
  });
});

describe('cache backends', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const backends: Record<string, () => CacheBackend> = {
    memory: memoryBackend,
    folder: () => nodeFsBackend(dirs[dirs.push(mkdtempSync(join(tmpdir(), 'peft-cache-'))) - 1]),
    'OPFS in a worker': () => opfsBackend(fakeOpfs(true)),
    'OPFS on a page': () => opfsBackend(fakeOpfs(false)),
  };
  for (const [name, make] of Object.entries(backends)) {
    it(`${name}: partial writes, resume, completion, listing, deletion`, async () => {
      const cache = new FolderCache(make(), 1000); // small checkpoints: several flushes per file
      const key = { endpoint: 'http://127.0.0.1:1', repo: 'o/n', revision: 'refs/pr/1' };
      const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 255);
      const meta = { size: 5000, etag: '"e"' };
      const w = await cache.writer(key, 'model.safetensors', meta, 0);
      await w.append(data.subarray(0, 1500));
      await w.append(data.subarray(1500, 2100));
      await w.close();
      expect(await cache.getPartial(key, 'model.safetensors')).toMatchObject({ length: 2100, complete: false, meta });
      expect(await cache.get(key, 'model.safetensors')).toBeNull();
      const w2 = await cache.writer(key, 'model.safetensors', meta, 2000); // continue from a shorter verified length
      await w2.append(data.subarray(2000));
      await w2.commit();
      const f = (await cache.get(key, 'model.safetensors'))!;
      const parts: number[] = [];
      for await (const c of f.chunks()) parts.push(...c);
      expect(Uint8Array.from(parts)).toEqual(data);
      expect(await f.read(10, 20)).toEqual(data.subarray(10, 20));
      await cache.put(key, 'config.json', new TextEncoder().encode('{}'), { size: 2, etag: null });
      expect(await cachedSource(cache, key)).toBeNull(); // no manifest yet: not a complete snapshot
      await cache.putManifest(key, { files: [{ name: 'config.json', size: 2 }, { name: 'model.safetensors', size: 5000 }], commit: null, savedAt: 'now' });
      expect(await (await cachedSource(cache, key))!.read('config.json')).toEqual(new TextEncoder().encode('{}'));
      const [entry] = await cache.list();
      expect(entry).toMatchObject({ endpoint: 'http://127.0.0.1:1', repo: 'o/n', revision: 'refs/pr/1', bytes: 5002, complete: true, savedAt: 'now' });
      expect(entry.files.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'config.json', bytes: 2, complete: true }, { name: 'model.safetensors', bytes: 5000, complete: true },
      ]);
      expect(await cache.delete('o/n', 'other')).toBe(0);
      expect(await cache.delete('o/n')).toBe(5002);
      expect(await cache.list()).toEqual([]);
    });
  }
});

describe('static folders that compress', () => {
  it('streams a 200 without Content-Length (gzip on the fly) using the size read with the header', async () => {
    const dir = fx('gpt2-tiny');
    // Ranged reads get a 206 with Content-Range; a full GET comes back compressed, without Content-Length.
    const fakeFetch = async (input: string, init: RequestInit = {}) => {
      const file = new URL(input).pathname.split('/').pop()!;
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(join(dir, file)));
      } catch {
        return new Response('not found', { status: 404 });
      }
      const range = new Headers(init.headers).get('range');
      if (range) {
        const [, a, b] = /bytes=(\d+)-(\d*)/.exec(range)!;
        const end = b ? Math.min(Number(b) + 1, bytes.length) : bytes.length;
        return new Response(bytes.slice(Number(a), end), {
          status: 206,
          headers: { 'Content-Range': `bytes ${a}-${end - 1}/${bytes.length}`, 'Content-Length': String(end - Number(a)) },
        });
      }
      return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { 'Content-Encoding': 'gzip' } });
    };
    const src = urlSource('http://static.test/models/gpt2-tiny/', 'gpt2-tiny', fakeFetch);
    const r = await downloadModel(src, { cache: null });
    const want = loadModelDir(dir).tensors;
    expect([...r.weights.keys()].sort()).toEqual([...want.keys()].sort());
    expect(r.weights.get('transformer.wte.weight')!.data).toEqual(want.get('transformer.wte.weight')!.data);
  });
});

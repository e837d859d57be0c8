/**
 * The worker's model loader (src/worker/model-loader.ts) over the engine: every protocol source kind becomes an
 * engine FileSource, is inspected header first and downloaded through the (here memory-backed) cache; the
 * summaries the page gets; the memory report's go-ahead rule. Against the stand-in Hub.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './helpers';
import { EngineError } from '../src/engine/errors';
import { HubError } from '../src/engine/io/hub';
import { readSafetensors } from '../src/engine/io/safetensors';
import { downloadInspected, inspectionInfo, inspectSource, memoryReport, modelCache, modelInfo, sourceFor } from '../src/worker/model-loader';
import type { ModelSource } from '../src/worker/protocol';
import { startHubServer, type HubServer } from './support/hub-server';

const FX = join(import.meta.dirname, 'fixtures/models');
const fx = (n: string, f = '') => join(FX, n, f);
const never = new AbortController().signal;

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer({
    repos: {
      'fixtures/gpt2-tiny': { dir: fx('gpt2-tiny'), revisions: { v1: { dir: fx('gpt2-tiny') } } },
      'fixtures/gated-gpt2': { dir: fx('gpt2-tiny'), gated: 'hf_test_token' },
      'fixtures/llama-tiny': { dir: fx('llama-tiny') },
    },
  });
});
afterAll(() => hub.close());

const hubSource = (repoId: string, token?: string): ModelSource => ({ kind: 'hub', repoId, endpoint: hub.url, token });

describe('worker model loader', () => {
  it('maps every source kind to the engine sources', async () => {
    const hubS = await sourceFor(hubSource('fixtures/gpt2-tiny@v1'), 'http://x/');
    expect([hubS.source.kind, hubS.source.id, hubS.source.revision, hubS.name, hubS.repoUrl]).toEqual(['hub', 'fixtures/gpt2-tiny', 'v1', 'fixtures/gpt2-tiny@v1', `${hub.url}/fixtures/gpt2-tiny`]);
    const rev = await sourceFor({ kind: 'hub', repoId: 'a/b', revision: 'dev', endpoint: hub.url }, 'http://x/');
    expect(rev.source.revision).toBe('dev');
    const url = await sourceFor({ kind: 'url', url: 'models/sotu-gpt2/', name: 'sotu-gpt2' }, 'http://127.0.0.1:4173/');
    expect([url.source.kind, url.source.id, url.source.cacheKey, url.name]).toEqual(['url', 'sotu-gpt2', null, 'sotu-gpt2']);
    const files = await sourceFor({ kind: 'files', files: [new File([readFileSync(fx('gpt2-tiny', 'config.json'))], 'config.json')] }, 'http://x/');
    expect([files.source.kind, files.name]).toEqual(['local', 'local files']);
    const handle = {
      kind: 'directory' as const, name: 'my-model',
      async *values() {
        yield { kind: 'file' as const, name: 'config.json', getFile: async () => new File([readFileSync(fx('gpt2-tiny', 'config.json'))], 'config.json') };
      },
    };
    const folder = await sourceFor({ kind: 'folder', handle: handle as unknown as FileSystemDirectoryHandle }, 'http://x/');
    expect([folder.source.kind, folder.name, await folder.source.stat('config.json')]).toEqual(['local', 'my-model', { name: 'config.json', size: readFileSync(fx('gpt2-tiny', 'config.json')).length }]);
    await expect(sourceFor(hubSource('not a repo'), 'http://x/')).rejects.toThrow(/not a Hub model id/);
  });

  it('inspects a Hub repo from headers, then downloads it into the cache; the second load is offline', async () => {
    const { persistent } = await modelCache();
    expect(persistent).toBe(false); // no OPFS in Node: memory, for this session
    const mark = hub.requests.length;
    const m = await inspectSource(hubSource('fixtures/gpt2-tiny@v1'), 'http://x/', never);
    expect(hub.requests.slice(mark).filter((r) => r.path.endsWith('model.safetensors')).every((r) => r.range === 'bytes=0-65535')).toBe(true);
    const info = modelInfo(m);
    expect(info).toMatchObject({ name: 'fixtures/gpt2-tiny@v1', modelType: 'gpt2', className: 'GPT2LMHeadModel', task: 'CAUSAL_LM', hasTokenizer: false, sourceKind: 'hub', revision: 'v1', defaultTargets: ['c_attn'] });
    const summary = inspectionInfo(m.inspection);
    expect(summary.totalParams).toBe(172288);
    expect(summary.dtypes).toEqual({ F32: expect.any(Number) });
    expect(summary.notes.join(' ')).toContain('no tokenizer.json');
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary); // survives postMessage as is

    const seen: number[] = [];
    const loaded = await downloadInspected(m, never, (p) => seen.push(p.loaded));
    expect(seen.at(-1)).toBe(summary.downloadBytes);
    expect([loaded.baseName, loaded.revision, loaded.tokenizer]).toEqual(['fixtures/gpt2-tiny', 'v1', null]);
    const want = readSafetensors(readFileSync(fx('gpt2-tiny', 'model.safetensors'))).tensors;
    expect([...loaded.weights.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, t] of want) expect(loaded.weights.get(k)!.data).toEqual(t.data);

    const { cache } = await modelCache();
    expect((await cache.list()).map((c) => [c.repo, c.revision, c.complete])).toEqual([['fixtures/gpt2-tiny', 'v1', true]]);
    const before = hub.requests.length;
    const again = await inspectSource(hubSource('fixtures/gpt2-tiny@v1'), 'http://x/', never);
    expect(modelInfo(again).sourceKind).toBe('cache');
    await downloadInspected(again, never, () => undefined);
    expect(hub.requests.length).toBe(before);
    // "main" is PEFT's default revision: adapter_config.json keeps revision null.
    const main = await downloadInspected(await inspectSource(hubSource('fixtures/gpt2-tiny'), 'http://x/', never), never, () => undefined);
    expect(main.revision).toBeNull();
  });

  it('reports gated repos with their code, and loads them with the token', async () => {
    const e = await rejection(inspectSource(hubSource('fixtures/gated-gpt2'), 'http://x/', never));
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).hubCode).toBe('GatedRepo');
    expect(e.message).toContain(`${hub.url}/fixtures/gated-gpt2`);
    const m = await inspectSource(hubSource('fixtures/gated-gpt2', 'hf_test_token'), 'http://x/', never);
    expect(modelInfo(m).repoUrl).toBe(`${hub.url}/fixtures/gated-gpt2`);
  });

  it('cancels through the signal', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const e = await rejection(inspectSource(hubSource('fixtures/llama-tiny'), 'http://x/', ctl.signal));
    expect(e.code).toBe('CANCELLED');
  });

  it('asks before a download that cannot fit', async () => {
    const config = JSON.parse(readFileSync(fx('gpt2-tiny', 'config.json'), 'utf8'));
    const base = { config, task: 'CAUSAL_LM' as const, totalParams: 172288, trainable: 1000, seqLen: 128 };
    const small = await memoryReport({ ...base, batch: 2, backend: 'wasm' });
    expect(small.warnings).toEqual([]);
    expect(small.blocking).toBe(false);
    expect(small.estimate.weightsBytes).toBe(172288 * 4);
    const huge = await memoryReport({ ...base, batch: 512, seqLen: 1024, backend: 'wasm', downloadBytes: 700_000 });
    expect(huge.warnings.map((w) => w.code)).toContain('WASM_HEAP');
    expect(huge.blocking).toBe(true);
    expect(huge.limits.downloadBytes).toBe(700_000);
  });
});

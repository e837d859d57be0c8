/**
 * Hub datasets on the stand-in Hub: ids, configs and splits (repo files and the Parquet conversion), row counts from
 * Parquet footers before any row is read, the first N rows read with range requests for the row groups they need,
 * a multi-file split, CSV / JSON / JSONL repo files, revisions, and every error a person can meet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { HubClient } from '../src/engine/io/hub';
import { HubDataset, parseDatasetId, splitOfPath } from '../src/engine/io/hub-dataset';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { chatRow, datasetRepos } from './support/dataset-fixtures';
import { startHubServer, type HubServer } from './support/hub-server';

let hub: HubServer;
const repos = datasetRepos();
// 2000 rows of 200 pseudo-random hex characters (incompressible enough), 100 rows per row group: about 400 KB.
let seed = 7;
const hex = () => Array.from({ length: 200 }, () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 28).toString(16)).join('');
const BIG_TEXT = Array.from({ length: 2000 }, hex);
const BIG = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: BIG_TEXT, type: 'STRING' }], rowGroupSize: 100 }));
repos['tests/big'] = { files: { 'train.parquet': BIG } };
beforeAll(async () => {
  hub = await startHubServer({ repos: {}, datasets: repos });
});
afterAll(() => hub.close());
const ds = (id: string, token?: string) => new HubDataset(new HubClient({ endpoint: hub.url, token }), id);
const fail = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return (e as EngineError).message;
  }
  throw new Error('expected a failure');
};

describe('dataset ids', () => {
  it('owner/name[:config][@revision], hub: prefix, dataset page URLs', () => {
    expect(parseDatasetId('tests/chat-qa')).toEqual({ repo: 'tests/chat-qa', config: null, revision: 'main' });
    expect(parseDatasetId('hub:nyu-mll/glue:sst2@refs/pr/3')).toEqual({ repo: 'nyu-mll/glue', config: 'sst2', revision: 'refs/pr/3' });
    expect(parseDatasetId('https://huggingface.co/datasets/nyu-mll/glue/viewer/cola')).toEqual({ repo: 'nyu-mll/glue', config: 'cola', revision: 'main' });
    expect(parseDatasetId('https://huggingface.co/datasets/a/b/tree/v2')).toEqual({ repo: 'a/b', config: null, revision: 'v2' });
    expect(() => parseDatasetId('not an id')).toThrow(/is not a Hub dataset id.*owner\/name:config/);
  });

  it('splits from file names as datasets infers them', () => {
    expect(['data/train-00000-of-00002.parquet', 'validation.json', 'dev.csv', 'data/test.jsonl', 'data/misc.csv'].map(splitOfPath)).toEqual(['train', 'validation', 'validation', 'test', null]);
  });
});

describe('repo files', () => {
  it('lists splits with row counts from the footers only, then reads the first rows of a multi-file split', async () => {
    const d = ds('tests/chat-qa');
    const l = await d.list();
    expect(l.source).toBe('repo-files');
    expect(l.configs.map((c) => [c.name, c.splits.map((s) => [s.name, s.files.length])])).toEqual([['default', [['train', 2], ['test', 1]]]]);
    const train = await d.split('train');
    hub.requests.length = 0;
    expect(await d.rowCounts(train)).toEqual([12, 12]);
    // Footers only: one suffix range request per file.
    expect(hub.requests.map((r) => [r.path.split('/').pop(), r.range])).toEqual([
      ['train-00000-of-00002.parquet', 'bytes=-65536'], ['train-00001-of-00002.parquet', 'bytes=-65536'],
    ]);
    hub.requests.length = 0;
    const first = await d.rows(train, { maxRows: 7 });
    expect(first.columns).toEqual(['messages', 'id']);
    expect(first.rows).toEqual(Array.from({ length: 7 }, (_, i) => ({ ...chatRow(i), id: i })));
    expect(hub.requests).toHaveLength(0); // files under 64 KB: the tail read already holds every row group
    const all = await d.rows(train);
    expect(all.rows.map((r) => r.id)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(all.rows[13]).toEqual({ ...chatRow(13), id: 13 });
  });

  it('the first rows of a large file cost its footer and the row groups they are in, not the whole file', async () => {
    const d = ds('tests/big');
    const train = await d.split('train');
    hub.requests.length = 0;
    const r = await d.rows(train, { maxRows: 150 });
    expect(r.rows.map((x) => x.text)).toEqual(BIG_TEXT.slice(0, 150));
    const fetched = hub.requests.reduce((a, q) => a + q.bytes, 0);
    expect(BIG.length).toBeGreaterThan(300_000);
    expect(hub.requests.every((q) => q.status === 206)).toBe(true);
    expect(fetched).toBeLessThan(65_536 + 3 * (BIG.length / 20)); // the tail + two row groups of twenty, with room
  });

  it('CSV, JSON and JSONL files by split name; a revision reads its own files', async () => {
    const d = ds('tests/csv-json');
    const c = await d.config();
    expect(c.splits.map((s) => s.name)).toEqual(['train', 'validation', 'test']);
    expect((await d.rows(c.splits[0])).rows).toEqual([
      { instruction: 'Name a colour', input: '', output: 'Red' }, { instruction: 'Add 2 and 2', input: '', output: '4' }, { instruction: 'Say hi', input: 'politely', output: 'Hello there' },
    ]);
    expect((await d.rows(c.splits[1])).rows).toEqual([{ instruction: 'Name a fruit', input: '', output: 'Apple' }]);
    const v1 = ds('tests/chat-qa@v1');
    const s = await v1.split('train');
    expect(s.files.map((f) => f.path)).toEqual(['train.csv']);
    expect((await v1.rows(s, { maxRows: 2 })).rows).toEqual([{ prompt: 'Hi', completion: 'Hello.' }, { prompt: 'Bye', completion: 'Goodbye.' }]);
  });
});

describe('the Parquet conversion', () => {
  it('configs and splits from /parquet, files through the refs/convert/parquet redirect, INT64 labels as numbers', async () => {
    const d = ds('tests/glue-like:sst2');
    const l = await d.list();
    expect(l.source).toBe('parquet-conversion');
    expect(l.configs.map((c) => [c.name, c.splits.map((s) => s.name)])).toEqual([['sst2', ['train', 'validation']], ['cola', ['train']]]);
    const train = await d.split('train');
    expect(await d.rowCounts(train)).toEqual([10, 5]);
    const r = await d.rows(train, { maxRows: 12 });
    expect(r.rows.map((x) => x.sentence)).toEqual(Array.from({ length: 12 }, (_, i) => `sentence number ${i}`));
    expect(r.rows.slice(0, 3).map((x) => x.label)).toEqual([0, 1, 0]);
    expect(hub.requests.some((q) => q.status === 302 && q.path.endsWith('/parquet/sst2/train/0.parquet'))).toBe(true);
  });
});

describe('errors say what to do', () => {
  it('missing, gated, configs, splits and unsupported files', async () => {
    expect(await fail(ds('tests/nope').list())).toMatch(/Dataset tests\/nope was not found on http.*Check the id.*add an access token/);
    expect(await fail(ds('tests/gated-chat').split('train').then((s) => ds('tests/gated-chat').rows(s)))).toMatch(/tests\/gated-chat is a gated dataset: accept its conditions at .*\/datasets\/tests\/gated-chat/);
    expect(await fail(ds('tests/gated-chat', 'hf_wrong').split('train').then((s) => ds('tests/gated-chat', 'hf_wrong').rows(s)))).toMatch(/this access token has no access to it yet/);
    const ok = ds('tests/gated-chat', 'hf_test_token');
    expect((await ok.rows(await ok.split('train'), { maxRows: 1 })).rows).toHaveLength(1);
    expect(await fail(ds('tests/glue-like').config())).toMatch(/has 2 configs; choose one: sst2, cola \(write tests\/glue-like:sst2\)/);
    expect(await fail(ds('tests/glue-like:mnli').config())).toMatch(/has no config "mnli"; its configs are sst2, cola/);
    expect(await fail(ds('tests/glue-like:sst2').split('test'))).toMatch(/\(config sst2\) has no split "test"; its splits are train, validation/);
    expect(await fail(ds('tests/zipped').list())).toMatch(/its data is in files PEFT Studio cannot read \(data\/train\.zip\).*no Parquet conversion/);
    expect(await fail(ds('tests/chat-qa@v9').list())).toMatch(/Revision "v9" was not found in dataset tests\/chat-qa/);
  });
});

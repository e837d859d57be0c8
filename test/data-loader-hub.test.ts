/**
 * The studio's data loader on a Hub dataset (the stand-in Hub): configs and splits with row counts, the first N
 * rows, a named validation split, chat rows rendered and masked, a Parquet text + label set for classification,
 * and an error that keeps nothing half-loaded.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';
import { loadData } from '../src/worker/data-loader';
import type { DataRequest } from '../src/worker/protocol';
import { datasetRepos } from './support/dataset-fixtures';
import { startHubServer, type HubServer } from './support/hub-server';

const SOTU = join(fileURLToPath(new URL('..', import.meta.url)), 'public/models/sotu-gpt2');
let hub: HubServer;
let tok: Tokenizer;
beforeAll(async () => {
  hub = await startHubServer({ repos: {}, datasets: datasetRepos() });
  tok = await loadTokenizerFromDir(SOTU);
});
afterAll(() => hub.close());
const req = (h: Omit<NonNullable<DataRequest['hub']>, 'endpoint'>, task: DataRequest['task'] = 'CAUSAL_LM'): DataRequest => ({
  source: { kind: 'builtin', id: 'unused' }, task, validationSplit: 0.2, maxLength: 128, seed: 1, hub: { ...h, endpoint: hub.url },
});

describe('studio data from the Hub', () => {
  it('a chat dataset: splits and row counts, the first 14 rows, the test split for evaluation, the answers trained on', async () => {
    const d = await loadData(req({ id: 'tests/chat-qa', split: 'train', validationSplit: 'test', maxRows: 14 }), 'http://x/', (s) => tok.encode(s), tok);
    expect(d.summary.hub).toEqual({
      id: 'tests/chat-qa:default', config: 'default', source: 'repo-files', configs: ['default'], maxRows: 14,
      splits: [{ name: 'train', rows: 24, files: 2 }, { name: 'test', rows: 6, files: 1 }],
    });
    expect([d.summary.trainRows, d.summary.validationRows]).toEqual([14, 6]);
    expect(d.summary.chat!.format).toBe('messages');
    expect(d.summary.chat!.preview!.filter((p) => p.trained).map((p) => p.text)).toEqual(['Paris.<|im_end|>\n']);
  });

  it('a Parquet text + label config for classification', async () => {
    const d = await loadData(req({ id: 'tests/glue-like:sst2', split: 'train', maxRows: 100 }, 'SEQ_CLS'), 'http://x/', null, null);
    expect(d.summary.mapping).toEqual({ kind: 'text-label', text: 'sentence', label: 'label' });
    expect(d.summary.labels).toEqual(['0', '1']);
    expect(d.summary.trainRows + d.summary.validationRows).toBe(15);
  });

  it('a split that is not there', async () => {
    await expect(loadData(req({ id: 'tests/chat-qa', split: 'validation', maxRows: 5 }), 'http://x/', null, tok)).rejects.toThrow(/has no split "validation"; its splits are train, test/);
  });
});

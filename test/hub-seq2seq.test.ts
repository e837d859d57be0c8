/**
 * SEQ_2_SEQ_LM from a Hub dataset, in the studio's data loader and in `cli train --task seq_2_seq_lm --data hub:...`,
 * against the stand-in Hub (HF_ENDPOINT): a Parquet dataset with
 * `document` / `summary` columns (XSum's names, found without flags) in train and validation splits; another pair
 * of columns by --source-column / --target-column; a row with an empty target stops the run by its row number
 * unless --skip-bad-rows; a missing column names the columns there are.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../src/cli/train';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { loadData } from '../src/worker/data-loader';
import { writeT5Tokenizer } from './support/t5-tokenizer';
import { FIX } from './helpers';
import { startHubServer, type HubServer } from './support/hub-server';

const MODEL = join(FIX, 'models', 't5-tiny');
const PAIRS: [string, string, string][] = [
  ['hello world', 'hallo welt', 'hello'],
  ['good morning', 'guten morgen', 'good'],
  ['hello good world', 'hallo guten welt', 'world'],
  ['good world', 'guten welt', 'morning'],
];

/** n rows (document, summary, en, de) cycling through PAIRS; `emptyAt` (0-based) gets an empty summary. */
function parquet(n: number, emptyAt = -1): Uint8Array {
  const rows = Array.from({ length: n }, (_, i) => PAIRS[i % PAIRS.length]);
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'document', data: rows.map((r) => `translate english to german: ${r[0]}`), type: 'STRING' },
      { name: 'summary', data: rows.map((r, i) => (i === emptyAt ? '' : r[1])), type: 'STRING' },
      { name: 'en', data: rows.map((r) => r[2]), type: 'STRING' },
      { name: 'de', data: rows.map((r) => r[2]), type: 'STRING' },
    ],
  }));
}

/** The T5-style tokenizer of test/support/t5-tokenizer.ts over cli-seq2seq.test.ts's words (</s> appended). */
const WORDS = ['hello', 'world', 'translate', 'english', 'to', 'german', 'hallo', 'welt', 'good', 'morning', 'guten', 'morgen'];
const writeTokenizer = (dir: string) => writeT5Tokenizer(dir, WORDS, [['\u2581', -3], [':', -4]]);

let hub: HubServer;
let tmp: string;
const saved = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
beforeAll(async () => {
  await useNodeBackend('wasm');
  hub = await startHubServer({
    repos: {},
    datasets: {
      'tests/greetings': {
        files: {
          'README.md': '---\nlicense: mit\n---\n# greetings\n',
          'data/train-00000-of-00001.parquet': parquet(16),
          'data/validation-00000-of-00001.parquet': parquet(4),
        },
      },
      'tests/greetings-bad': { files: { 'data/train-00000-of-00001.parquet': parquet(8, 4) } },
    },
  });
  tmp = mkdtempSync(join(tmpdir(), 'cli-hub-seq2seq-'));
  writeTokenizer(tmp);
  process.env.HF_ENDPOINT = hub.url;
  delete process.env.HF_TOKEN;
});
afterAll(async () => {
  process.env.HF_ENDPOINT = saved.endpoint;
  if (saved.token !== undefined) process.env.HF_TOKEN = saved.token;
  if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

const base = (data: string, out: string, ...more: string[]) => [
  '--model', MODEL, '--tokenizer', tmp, '--data', data, '--task', 'seq_2_seq_lm', '--method', 'lora', '--r', '4', '--lora-alpha', '8',
  '--target-modules', 'q,v', '--batch-size', '4', '--out', join(tmp, out), ...more,
];
const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('the studio\'s data loader, SEQ_2_SEQ_LM from the Hub', () => {
  it('document / summary by name, the validation split, source / target lengths with </s>; the Hub listing in the summary', async () => {
    const tok = await loadTokenizerFromDir(tmp);
    const d = await loadData({
      source: { kind: 'builtin', id: 'unused' }, task: 'SEQ_2_SEQ_LM', validationSplit: 0.2, maxLength: 16, seed: 1,
      hub: { id: 'tests/greetings', split: 'train', validationSplit: 'validation', maxRows: 100, endpoint: hub.url },
    }, 'http://x/', (s) => tok.encode(s), tok);
    expect([d.summary.trainRows, d.summary.validationRows]).toEqual([16, 4]);
    expect([d.summary.seq2seq!.sourceColumn, d.summary.seq2seq!.targetColumn]).toEqual(['document', 'summary']);
    expect(d.summary.seq2seq!.sample).toMatchObject({ source: 'translate english to german: hello world', target: 'hallo welt' });
    // "hallo welt" + </s>: 3 tokens; the longest target "hallo guten welt" + </s>: 4.
    expect(d.summary.seq2seq!.target).toMatchObject({ min: 3, max: 4 });
    expect(d.summary.hub!.splits).toEqual([{ name: 'train', rows: 16, files: 1 }, { name: 'validation', rows: 4, files: 1 }]);
  });
});

describe('cli train --task seq_2_seq_lm on a Hub dataset', () => {
  it('document / summary found by name; trains on train, evaluates on validation with generation scores', async () => {
    await trainCommand(base('hub:tests/greetings', 'run', '--validation-split-name', 'validation', '--steps', '24', '--lr', '3e-2', '--eval-steps', '24'));
    const run = JSON.parse(readFileSync(join(tmp, 'run', 'run.json'), 'utf8'));
    expect(run.train_examples).toBe(16);
    expect(run.validation_examples).toBe(4);
    const metrics = lines(join(tmp, 'run', 'metrics.jsonl'));
    const losses = metrics.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-4))).toBeLessThan(mean(losses.slice(0, 4)) - 0.5);
    const ev = metrics.filter((x) => 'eval_loss' in x).pop();
    for (const k of ['eval_exact_match', 'eval_chrf', 'eval_rougeL']) expect(ev[k]).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(readFileSync(join(tmp, 'run', 'adapter_config.json'), 'utf8')).task_type).toBe('SEQ_2_SEQ_LM');
  }, 120_000);

  it('--source-column / --target-column pick another pair; a missing one names the columns', async () => {
    await trainCommand(base('hub:tests/greetings', 'cols', '--source-column', 'en', '--target-column', 'de', '--steps', '1', '--validation-split', '0'));
    expect(JSON.parse(readFileSync(join(tmp, 'cols', 'run.json'), 'utf8')).train_examples).toBe(16);
    await expect(trainCommand(base('hub:tests/greetings', 'nope', '--source-column', 'fr', '--steps', '1')))
      .rejects.toThrow(/tests\/greetings train line 1: no column "fr"; columns are "document", "summary", "en", "de" \(choose the source with --source-column\)/);
  }, 60_000);

  it('an empty target stops the run by row; --skip-bad-rows skips it', async () => {
    await expect(trainCommand(base('hub:tests/greetings-bad', 'bad', '--steps', '1', '--validation-split', '0')))
      .rejects.toThrow(/tests\/greetings-bad train line 5: column "summary" \(the target\) is empty/);
    await trainCommand(base('hub:tests/greetings-bad', 'skip', '--steps', '1', '--validation-split', '0', '--skip-bad-rows'));
    expect(JSON.parse(readFileSync(join(tmp, 'skip', 'run.json'), 'utf8')).train_examples).toBe(7);
  }, 60_000);
});

/**
 * `cli train --data hub:...` against the stand-in Hub (HF_ENDPOINT): a chat dataset stored as Parquet in a
 * multi-file split, with a test split for evaluation and the first N rows only; the trained-token count is worked out
 * from the tokenizer alone (the tokens of each "answer<|im_end|>\n"); and the errors a person can meet.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../src/cli/train';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { chatRow, datasetRepos } from './support/dataset-fixtures';
import { startHubServer, type HubServer } from './support/hub-server';

const SOTU = join(fileURLToPath(new URL('..', import.meta.url)), 'public/models/sotu-gpt2');
let hub: HubServer;
let tmp: string;
const saved = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
beforeAll(async () => {
  await useNodeBackend('wasm');
  hub = await startHubServer({ repos: {}, datasets: datasetRepos() });
  tmp = mkdtempSync(join(tmpdir(), 'cli-hub-data-'));
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
const args = (data: string, ...more: string[]) => ['--model', SOTU, '--data', data, '--target-modules', 'c_attn', '--batch-size', '4', '--out', join(tmp, 'out'), ...more];

describe('cli train on a Hub dataset', () => {
  it('hub:tests/chat-qa, first 14 rows of a two-file train split, evaluated on test', async () => {
    await trainCommand(args('hub:tests/chat-qa', '--split', 'train', '--validation-split-name', 'test', '--max-rows', '14', '--steps', '2', '--eval-steps', '2'));
    const run = JSON.parse(readFileSync(join(tmp, 'out', 'run.json'), 'utf8'));
    expect(run.train_examples).toBe(14);
    expect(run.validation_examples).toBe(6);
    expect(run.data_format).toBe('messages');
    const tok = await loadTokenizerFromDir(SOTU);
    const answers = Array.from({ length: 14 }, (_, i) => chatRow(i).messages[2].content);
    expect(run.trained_tokens).toBe(answers.reduce((s, a) => s + tok.encode(`${a}<|im_end|>\n`, { addSpecialTokens: false }).length, 0));
    expect(Number.isFinite(run.final.eval_loss)).toBe(true);
  }, 120_000);

  it('the issue\'s flag names: --dataset, --validation-split NAME, --format, --train-on-prompt, --packing', async () => {
    const out = join(tmp, 'alias');
    await trainCommand(['--model', SOTU, '--dataset', 'tests/chat-qa', '--validation-split', 'test', '--max-rows', '14', '--format', 'messages',
      '--train-on-prompt', '--packing', '--max-length', '32', '--target-modules', 'c_attn', '--batch-size', '4', '--steps', '1', '--out', out]);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.data_format).toBe('messages');
    expect(run.train_on).toBe('all');
    // 14 ChatML rows, none ending in GPT-2's EOS, so 14 separators; the blocks are the tokens plus them, 32 at a time.
    expect(run.packing.examples).toBe(14);
    expect(run.packing.separators).toBe(14);
    expect(run.packing.blocks).toBe(Math.ceil((run.tokens + 14) / 32));
    expect(run.train_examples).toBe(run.packing.blocks);
    await expect(trainCommand(args(join(tmp, 'x.jsonl'), '--validation-split', 'test'))).rejects.toThrow(/a split name is for Hub datasets/);
    await expect(trainCommand(['--dataset', 'tests/chat-qa', ...args('hub:tests/chat-qa')])).rejects.toThrow(/give --dataset or --data, not both/);
  }, 120_000);

  it('says what is wrong', async () => {
    await expect(trainCommand(args('hub:tests/chat-qa', '--split', 'validation', '--steps', '1'))).rejects.toThrow(/has no split "validation"; its splits are train, test/);
    await expect(trainCommand(args('hub:tests/gated-chat', '--steps', '1'))).rejects.toThrow(/tests\/gated-chat is a gated dataset/);
    await expect(trainCommand(args('hub:tests/glue-like:sst2', '--steps', '1', '--data-format', 'alpaca'))).rejects.toThrow(/tests\/glue-like train: the alpaca format needs column "instruction".*columns are sentence, label/);
    await expect(trainCommand(args(join(tmp, 'x.jsonl'), '--max-rows', '3'))).rejects.toThrow(/are for Hub datasets/);
    await expect(trainCommand(args('hub:not a dataset', '--steps', '1'))).rejects.toThrow(/is not a Hub dataset id/);
  }, 60_000);
});

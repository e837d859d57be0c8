/**
 * The studio's data loader on instruction / chat uploads: format detected, rendered with a built-in template for
 * sotu-gpt2 (no chat template of its own), the preview marks exactly the answers, and the trained-token count is
 * the tokens of each "answer<|im_end|>\n" (worked out from the tokenizer alone).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';
import { loadData } from '../src/worker/data-loader';
import type { DataRequest } from '../src/worker/protocol';

const SOTU = join(fileURLToPath(new URL('..', import.meta.url)), 'public/models/sotu-gpt2');
const QA = [['Who gave this speech?', 'The President.'], ['To whom?', 'Congress.'], ['When?', 'In January.'], ['Where?', 'In Washington.']];
let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizerFromDir(SOTU);
});
const file = (name: string, rows: unknown[]) => ({ kind: 'file' as const, file: new File([rows.map((r) => JSON.stringify(r)).join('\n')], name) });
const req = (source: DataRequest['source'], more: Partial<DataRequest> = {}): DataRequest => ({ source, task: 'CAUSAL_LM', validationSplit: 0.25, maxLength: 128, seed: 42, ...more });
const count = (s: string) => tok.encode(s, { addSpecialTokens: false }).length;

describe('studio chat data', () => {
  const rows = QA.map(([q, a]) => ({ conversations: [{ from: 'human', value: q }, { from: 'gpt', value: a }] }));

  it('ShareGPT upload: detected, rendered with ChatML, answers highlighted, trained tokens counted', async () => {
    const d = await loadData(req(file('chat.jsonl', rows)), 'http://x/', (s) => tok.encode(s), tok);
    const c = d.summary.chat!;
    expect(c.format).toBe('sharegpt');
    expect(c.detected).toBe('sharegpt');
    expect(c.template).toMatchObject({ name: 'chatml', source: 'builtin' });
    expect(d.summary.trainRows + d.summary.validationRows).toBe(4);
    expect(d.summary.validationRows).toBe(1);
    const trained = c.preview!.filter((p) => p.trained).map((p) => p.text);
    expect(trained).toHaveLength(1);
    const answer = QA.find(([, a]) => trained[0] === `${a}<|im_end|>\n`);
    expect(answer).toBeDefined();
    expect(c.preview!.map((p) => p.text).join('')).toBe(`<|im_start|>user\n${answer![0]}<|im_end|>\n<|im_start|>assistant\n${answer![1]}<|im_end|>\n`);
    // Training rows only: the answers of the rows left after the split.
    const inTrain = d.train.length;
    expect(c.stats!.rows).toBe(inTrain);
    const perRow = d.train.map((e) => e.labels!.slice(1).filter((l) => l !== -100).length);
    const answers = QA.map(([, a]) => count(`${a}<|im_end|>\n`));
    for (const n of perRow) expect(answers).toContain(n);
    expect(c.stats!.trainedTokens).toBe(perRow.reduce((a, b) => a + b, 0));
  });

  it('loss on everything, and the plain-columns choice', async () => {
    const all = await loadData(req(file('chat.jsonl', rows), { chat: { format: 'auto', template: 'alpaca', trainOn: 'all' } }), 'http://x/', null, tok);
    expect(all.summary.chat!.preview!.every((p) => p.trained)).toBe(true);
    expect(all.summary.chat!.template!.name).toBe('alpaca');
    const text = await loadData(req(file('chat.jsonl', rows), { chat: { format: 'text', template: 'auto', trainOn: 'responses' } }), 'http://x/', null, tok);
    expect(text.summary.chat).toBeUndefined();
  });

  it('without a tokenizer the rows wait for a model; a format that does not fit is an error naming the columns', async () => {
    const d = await loadData(req(file('chat.jsonl', rows)), 'http://x/', null, null);
    expect(d.train).toHaveLength(0);
    expect(d.summary.warnings[0]).toMatch(/load a model with a tokenizer/);
    await expect(loadData(req(file('chat.jsonl', rows), { chat: { format: 'alpaca', template: 'auto', trainOn: 'responses' } }), 'http://x/', null, tok))
      .rejects.toThrow(/the alpaca format needs column "instruction" and "output or response", but the columns are conversations/);
  });
});

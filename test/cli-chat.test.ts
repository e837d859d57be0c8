/**
 * `cli train` on instruction / chat data with the built-in sotu-gpt2 (a base model without a chat template):
 * format detection, the built-in template saved next to the adapter, the trained-token count (worked out from the
 * tokenizer alone: the tokens of each "answer<|im_end|>\n"), --train-on-inputs, --chat-template FILE, the loss
 * going down, and the messages bad input gets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../src/cli/train';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOTU = join(ROOT, 'public/models/sotu-gpt2');
const QA: [string, string][] = [
  ['What is the capital of France?', 'Paris.'], ['Name a primary color.', 'Red.'], ['How many days are in a week?', 'Seven.'],
  ['What do bees make?', 'Honey.'], ['What is frozen water called?', 'Ice.'], ['Which planet do we live on?', 'Earth.'],
];
// The built-in ChatML template, as written to chat_template.jinja.
const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let tmp: string;
let tok: Tokenizer;
const jsonl = (name: string, rows: unknown[]) => {
  const p = join(tmp, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};
const run = (out: string) => JSON.parse(readFileSync(join(tmp, out, 'run.json'), 'utf8'));
const losses = (out: string) => readFileSync(join(tmp, out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.loss !== undefined).map((r) => r.loss as number);
const count = (s: string) => tok.encode(s, { addSpecialTokens: false }).length;

beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'cli-chat-'));
  tok = await loadTokenizerFromDir(SOTU);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Every row trains (no held-out tenth), so the token counts below cover all of them.
const base = (data: string, out: string, ...more: string[]) => [
  '--model', SOTU, '--data', data, '--target-modules', 'c_attn', '--batch-size', '3', '--lr', '0.01', '--validation-split', '0', '--out', join(tmp, out), ...more,
];

describe('cli train on chat data', () => {
  it('messages rows: detected, ChatML for a model without a template, loss on the answers only, and it learns', async () => {
    const data = jsonl('chat.jsonl', QA.map(([q, a]) => ({ messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: q }, { role: 'assistant', content: a }] })));
    await trainCommand(base(data, 'chat', '--steps', '12'));
    const r = run('chat');
    expect(r.data_format).toBe('messages');
    expect(r.chat_template).toBe('chatml');
    expect(r.trained_tokens).toBe(QA.reduce((s, [, a]) => s + count(`${a}<|im_end|>\n`), 0));
    const all = QA.reduce((s, [q, a]) => s + count(`<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n${q}<|im_end|>\n<|im_start|>assistant\n${a}<|im_end|>\n`), 0);
    expect(r.tokens).toBeLessThanOrEqual(all); // segments tokenized apart never merge into fewer tokens here
    expect(r.tokens).toBeGreaterThan(all - 6 * 3);
    expect(readFileSync(join(tmp, 'chat', 'chat_template.jinja'), 'utf8')).toBe(CHATML);
    const l = losses('chat');
    expect(l[l.length - 1]).toBeLessThan(l[0] * 0.8);
  }, 120_000);

  it('alpaca rows with --train-on-inputs and a --chat-template file', async () => {
    const data = jsonl('alpaca.jsonl', QA.map(([q, a]) => ({ instruction: q, input: '', output: a })));
    const tpl = join(tmp, 'qa.jinja');
    writeFileSync(tpl, "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Q: ' + m['content'] + '\\n' }}{% else %}{{ 'A: ' + m['content'] + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'A: ' }}{% endif %}");
    await trainCommand(base(data, 'alpaca', '--steps', '1', '--chat-template', tpl));
    const r = run('alpaca');
    expect(r.data_format).toBe('alpaca');
    expect(r.chat_template).toBe(tpl);
    expect(r.trained_tokens).toBe(QA.reduce((s, [, a]) => s + count(`${a}\n\n`), 0));
    await trainCommand(base(data, 'alpaca-all', '--steps', '1', '--chat-template', tpl, '--train-on-inputs'));
    const all = run('alpaca-all');
    // Everything but each row's first token (a causal LM never predicts it).
    expect(all.trained_tokens).toBe(all.tokens - QA.length);
    expect(all.tokens).toBe(r.tokens);
  }, 120_000);

  it('bad chat data stops with the file, line and what to do', async () => {
    const data = jsonl('mixed.jsonl', [
      { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }] },
      { messages: [{ role: 'user', content: 'Hi' }] },
      { messages: 'not a list' },
    ]);
    await expect(trainCommand(base(data, 'x', '--steps', '1'))).rejects.toThrow(/mixed\.jsonl line 2: the conversation has no assistant turn.*\(and 1 more problem\(s\); --skip-bad-rows/);
    await expect(trainCommand(base(data, 'x', '--steps', '1', '--data-format', 'alpaca'))).rejects.toThrow(/the alpaca format needs column "instruction"/);
    await expect(trainCommand(base(data, 'x', '--steps', '1', '--chat-template', join(tmp, 'missing.jinja')))).rejects.toThrow(/no such file/);
    await expect(trainCommand(base(data, 'x', '--steps', '1', '--chat-template', 'model'))).rejects.toThrow(/has no chat_template/);
    await expect(trainCommand(base(data, 'x', '--steps', '1', '--data-format', 'yaml'))).rejects.toThrow(/--data-format must be one of alpaca, sharegpt, messages, prompt_completion, text, auto/);
  }, 60_000);
});

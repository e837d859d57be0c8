/**
 * Packing in the studio's chat loading: the rendered examples are packed into max-length blocks (labels kept),
 * with the padding saved, and the setting persists. Ids are worked out by hand from a word-level tokenizer (one id
 * per word or punctuation run, whitespace dropped; `</s>` = 3 is the EOS).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadTokenizer, type Tokenizer } from '../src/engine/tokenizer';
import { TABLE } from '../src/state/persist';
import { BUILTIN_TEMPLATES } from '../src/engine/train/chat-encode';
import { chatPrompt, cutAtStop, loadChatData } from '../src/worker/chat-data';

const WORDS = ['<unk>', '<|im_start|>', '<|im_end|>', '</s>', 'Hi', 'Hello', '!', 'Bye', '.', 'Name', 'a', 'color', 'Red'];
const X = -100;
let tok: Tokenizer;
let withTemplate: Tokenizer;
beforeAll(async () => {
  await useNodeBackend('cpu');
  withTemplate = await loadTokenizer({
    tokenizerJson: { version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null, model: { type: 'WordLevel', vocab: { '<unk>': 0 }, unk_token: '<unk>' } },
    tokenizerConfig: { eos_token: '</s>', chat_template: BUILTIN_TEMPLATES.chatml },
  });
  tok = await loadTokenizer({
    tokenizerJson: {
      version: '1.0', truncation: null, padding: null,
      added_tokens: [1, 2, 3].map((i) => ({ id: i, content: WORDS[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
      model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '<unk>' },
    },
    tokenizerConfig: { eos_token: '</s>', bos_token: '<s>' },
  });
});

const rows = [{ prompt: 'Hi', completion: 'Hello!' }, { prompt: 'Bye', completion: 'Bye.' }, { prompt: 'Name a color', completion: 'Red.' }];
const table = (r: Record<string, unknown>[]) => ({ file: 'train.jsonl', columns: ['prompt', 'completion'], rows: r, where: (i: number) => `row ${i + 1}` });

describe('packing in the studio', () => {
  it('packs the rendered examples into blocks of the max length, masks kept, and counts the padding saved', () => {
    const settings = { format: 'auto' as const, template: 'auto', trainOn: 'responses' as const, packing: true };
    const c = loadChatData('prompt_completion', table(rows), table(rows.slice(0, 2)), { settings, tokenizer: tok, maxLength: 8, validationSplit: 0, seed: 1 });
    // Hi Hello ! </s> | Bye Bye . </s> | Name a color Red . </s>: 14 tokens, each example already ends in EOS.
    expect(c.train.map((e) => e.inputIds)).toEqual([[4, 5, 6, 3, 7, 7, 8, 3], [9, 10, 11, 12, 8, 3]]);
    expect(c.train.map((e) => e.labels)).toEqual([[X, 5, 6, 3, X, 7, 8, 3], [X, X, X, 12, 8, 3]]);
    expect(c.validation.map((e) => e.inputIds)).toEqual([[4, 5, 6, 3, 7, 7, 8, 3]]);
    // Padded to 8 one per sequence: 4 + 4 + 2 pad tokens; packed: 16 - 14.
    expect(c.summary.packing).toMatchObject({ examples: 3, blocks: 2, maxLength: 8, wastedBefore: 10, wastedAfter: 2 });
    expect(c.summary.packing!.text).toMatch(/3 examples packed into 2 block/);
  });

  it('without packing each example stays one sequence and there is no packing summary', () => {
    const c = loadChatData('prompt_completion', table(rows), null, {
      settings: { format: 'auto', template: 'auto', trainOn: 'responses' }, tokenizer: tok, maxLength: 8, validationSplit: 0, seed: 1,
    });
    expect(c.train.map((e) => e.inputIds)).toEqual([[4, 5, 6, 3], [7, 7, 8, 3], [9, 10, 11, 12, 8, 3]]);
    expect(c.summary.packing).toBeUndefined();
  });

  it('the saved chat settings keep packing; older saves without it read as off; a non-boolean is refused', () => {
    const check = TABLE.chat.check as (x: unknown) => unknown;
    expect(check({ format: 'auto', template: 'auto', trainOn: 'responses', packing: true })).toEqual({ format: 'auto', template: 'auto', trainOn: 'responses', packing: true });
    expect(check({ format: 'auto', template: 'auto', trainOn: 'responses' })).toEqual({ format: 'auto', template: 'auto', trainOn: 'responses' });
    expect(() => check({ format: 'auto', template: 'auto', trainOn: 'responses', packing: 'yes' })).toThrow(/packing/);
  });
});

describe("the playground's chat prompt", () => {
  const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }];
  // As Python's jinja2 renders the ChatML template with add_generation_prompt=True.
  const CHATML = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';

  it("renders with the template the run trained with, else the model's, opening the assistant turn", () => {
    expect(chatPrompt(tok, msgs, { name: 'chatml', text: BUILTIN_TEMPLATES.chatml })).toEqual({ prompt: CHATML, template: 'chatml', stops: ['<|im_end|>'], addSpecialTokens: false });
    expect(chatPrompt(withTemplate, msgs, null)).toEqual({ prompt: CHATML, template: 'model', stops: ['<|im_end|>'], addSpecialTokens: false });
    // The built-in Alpaca prompt ends a reply at EOS (an id) or where the next instruction would start.
    expect(chatPrompt(tok, msgs.slice(1), { name: 'alpaca', text: BUILTIN_TEMPLATES.alpaca }).stops).toEqual(['### Instruction:']);
  });

  it('no template anywhere, or no user message last, is an error that says what to do', () => {
    expect(() => chatPrompt(tok, msgs, null)).toThrow(/no chat_template .* train on instruction \/ chat data/);
    expect(() => chatPrompt(withTemplate, [{ role: 'system', content: 'x' }], null)).toThrow(/Write a user message/);
  });

  it('a reply is cut at the first end-of-turn text', () => {
    expect(cutAtStop('Hello!<|im_end|>\n<|im_start|>user', ['<|im_end|>'])).toEqual({ text: 'Hello!', ended: true });
    expect(cutAtStop('Hel', ['<|im_end|>'])).toEqual({ text: 'Hel', ended: false });
  });
});

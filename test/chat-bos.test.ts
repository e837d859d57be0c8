/**
 * The chat playground's prompt: a template that starts with BOS ({{ bos_token }}, as Llama's and Gemma's do) and a
 * tokenizer whose post-processor adds BOS too must give one BOS, not two: the rendered prompt is encoded without
 * special tokens, as transformers' apply_chat_template(tokenize=True) and the studio's training rows encode it.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession } from '../src/engine/session';
import { loadTokenizer, type Tokenizer } from '../src/engine/tokenizer';
import { conversations } from '../src/state/chat-history';
import { chatPrompt } from '../src/worker/chat-data';
import { FIX } from './helpers';

const WORDS = ['<unk>', '<s>', '</s>', '[INST]', '[/INST]', 'hi', 'there', 'how', 'are', 'you'];
const BOS = 1;
// Llama-2's template shape: BOS first, then [INST] ... [/INST] per user turn.
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

let tok: Tokenizer;
beforeAll(async () => {
  await useNodeBackend('cpu');
  const special = (id: number) => ({ id, content: WORDS[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  tok = await loadTokenizer({
    tokenizerJson: {
      version: '1.0', truncation: null, padding: null, added_tokens: [0, 1, 2, 3, 4].map(special), normalizer: null, pre_tokenizer: { type: 'Whitespace' },
      // As Llama's tokenizer.json: BOS before every encoded text.
      post_processor: {
        type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [BOS], tokens: ['<s>'] } },
      },
      decoder: null,
      model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '<unk>' },
    },
    tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', chat_template: TEMPLATE },
  });
});

describe('chat prompt special tokens', () => {
  it('a template with its own BOS: one BOS with addSpecialTokens false (two with the default, the trap)', () => {
    const c = chatPrompt(tok, [{ role: 'user', content: 'hi there' }, { role: 'assistant', content: 'how are you' }, { role: 'user', content: 'hi' }], null);
    expect(c.prompt).toBe('<s>[INST] hi there [/INST] how are you </s>[INST] hi [/INST]');
    expect(c.addSpecialTokens).toBe(false);
    expect(tok.encode(c.prompt).slice(0, 2)).toEqual([BOS, BOS]);
    const ids = tok.encode(c.prompt, { addSpecialTokens: c.addSpecialTokens });
    expect(ids).toEqual([BOS, 3, 5, 6, 4, 7, 8, 9, 2, 3, 5, 4]);
    expect(ids.filter((i) => i === BOS)).toHaveLength(1);
  });

  it('generation encodes the prompt as the playground asks (plain prompts keep the tokenizer\'s BOS)', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const calls: { text: string; add: boolean | undefined }[] = [];
    const spy = {
      encode: (text: string, o?: { addSpecialTokens?: boolean }) => (calls.push({ text, add: o?.addSpecialTokens }), tok.encode(text, o)),
      // The tiny model's vocabulary is larger than this tokenizer's: its ids as text.
      decode: (ids: number[]) => ids.join(' '),
      eosTokenId: tok.eosTokenId,
      padTokenId: 0,
    };
    const rows = [{ inputIds: [1, 3, 5, 6, 4] }, { inputIds: [1, 3, 7, 8, 4] }];
    const s = await TrainingSession.create({
      config, weights: tensors, tokenizer: spy, peft: loraConfig({ taskType: 'CAUSAL_LM', r: 2, loraAlpha: 4, targetModules: ['c_attn'] }),
      data: { train: rows }, args: { batchSize: 2, maxSteps: 1, seed: 1 },
    });
    try {
      const c = chatPrompt(tok, [{ role: 'user', content: 'hi' }], null);
      calls.length = 0;
      await s.generate(c.prompt, { maxNewTokens: 2, temperature: 0, addSpecialTokens: c.addSpecialTokens });
      expect(calls[0]).toEqual({ text: '<s>[INST] hi [/INST]', add: false });
      calls.length = 0;
      await s.generate('hi there', { maxNewTokens: 2, temperature: 0 });
      expect(calls[0]).toEqual({ text: 'hi there', add: undefined });
    } finally {
      s.dispose();
    }
  });
});

describe('chat playground history', () => {
  it('each side answers its own conversation: the person\'s messages, and that side\'s replies', () => {
    const c = conversations('Be brief.', [
      { role: 'user', content: 'hi' },
      { role: 'assistant', on: 'adapter reply', off: 'base reply' },
      { role: 'user', content: 'and then?' },
    ]);
    expect(c.on).toEqual([
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'adapter reply' }, { role: 'user', content: 'and then?' },
    ]);
    expect(c.off).toEqual([
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'base reply' }, { role: 'user', content: 'and then?' },
    ]);
    // No system prompt: none is sent.
    expect(conversations('  ', [{ role: 'user', content: 'hi' }]).off).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('the worker renders the base model\'s side from its own messages, BOS once on each', () => {
    const on = chatPrompt(tok, [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'there' }, { role: 'user', content: 'you' }], null);
    const off = chatPrompt(tok, [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'how' }, { role: 'user', content: 'you' }], null);
    expect(on.prompt).toBe('<s>[INST] hi [/INST] there </s>[INST] you [/INST]');
    expect(off.prompt).toBe('<s>[INST] hi [/INST] how </s>[INST] you [/INST]');
    for (const p of [on, off]) expect(tok.encode(p.prompt, { addSpecialTokens: p.addSpecialTokens }).filter((i) => i === BOS)).toHaveLength(1);
  });
});

/**
 * Instruction and chat data: formats, chat templates, loss on responses only, truncation that keeps the response,
 * and the masked tokens counting right in the loss. Token ids are worked out by hand from a tiny word-level
 * tokenizer (one id per word or punctuation run, whitespace dropped); rendered strings were produced by Python's
 * jinja2 3.1.6 with transformers' settings (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
 * extensions=[loopcontrols]), eos_token="</s>", bos_token="<s>").
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession } from '../src/engine/session';
import { loadTokenizer, type ChatMessage, type Tokenizer } from '../src/engine/tokenizer';
import {
  BUILTIN_TEMPLATES, chooseTemplate, encodeChatData, encodeRow, trainedTokens, type ChatTemplateChoice,
} from '../src/engine/train/chat-encode';
import { detectChatFormat, formatRow, resolveFormat } from '../src/engine/train/chat-format';
import { encodeExamples } from '../src/engine/train/data';
import { FIX, fixtureTensors } from './helpers';

const WORDS = [
  '<unk>', '<|im_start|>', '<|im_end|>', '</s>', 'system', 'user', 'assistant', 'Be', 'brief', '.', 'Hi', 'Hello', '!', 'Bye',
  '###', 'Instruction', ':', 'Response', 'Name', 'a', 'color', 'Red', 'Sky', 'Below', 'is', 'an', 'instruction', 'that',
  'describes', 'task', 'Write', 'response', 'appropriately', 'completes', 'the', 'request',
];
const id = (w: string) => WORDS.indexOf(w);
const X = -100;

function tokenizerJson() {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [1, 2, 3].map((i) => ({ id: i, content: WORDS[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '<unk>' },
  };
}

// The templates of real tokenizer_config.json files (Qwen2.5-Instruct without its tool branch, SmolLM2-Instruct,
// Zephyr), as the JSON files hold them.
const QWEN25 =
  "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\") %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";
const SMOLLM2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const ZEPHYR =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

const CONV: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Bye.' },
];

let chatml: Tokenizer; // chat_template = ChatML, eos </s>
let plain: Tokenizer; // no chat_template
beforeAll(async () => {
  await useNodeBackend('cpu');
  chatml = await loadTokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: { eos_token: '</s>', bos_token: '<s>', chat_template: BUILTIN_TEMPLATES.chatml } });
  plain = await loadTokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: { eos_token: '</s>', bos_token: '<s>' } });
});

const model: ChatTemplateChoice = { name: 'model', template: '', source: 'model' };
const withTemplate = (t: string): ChatTemplateChoice => ({ ...model, template: t });

describe('chat templates render as Python jinja2 does', () => {
  const cases: [string, string, ChatMessage[], boolean, string][] = [
    ['Qwen2.5', QWEN25, CONV, false, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n'],
    ['Qwen2.5, default system, generation prompt', QWEN25, CONV.slice(1, 4), true, '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n'],
    ['SmolLM2, default system', SMOLLM2, CONV.slice(1), false, '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n'],
    ['Zephyr (trim_blocks)', ZEPHYR, CONV, false, '<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\nBye.</s>\n'],
    ['Zephyr, generation prompt', ZEPHYR, CONV.slice(1, 4), true, '<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n'],
    ['built-in alpaca', BUILTIN_TEMPLATES.alpaca, CONV, false, 'Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n### Instruction:\nBye\n\n### Response:\nBye.</s>\n\n'],
    ['built-in alpaca, preamble', BUILTIN_TEMPLATES.alpaca, CONV.slice(1, 4), true, 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n### Instruction:\nBye\n\n### Response:\n'],
    ['built-in chatml', BUILTIN_TEMPLATES.chatml, CONV.slice(1), false, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n'],
  ];
  it.each(cases)('%s', (_n, template, messages, gen, expected) => {
    expect(plain.renderChat!(messages, { template, addGenerationPrompt: gen })).toBe(expected);
  });
});

describe('loss on responses only', () => {
  // ChatML of CONV, segment by segment:
  const sys = [1, 4, 7, 8, 9, 2]; //      <|im_start|> system \n Be brief . <|im_end|> \n
  const hi = [1, 5, 10, 2]; //            <|im_start|> user \n Hi <|im_end|> \n
  const head = [1, 6]; //                 <|im_start|> assistant \n
  const hello = [11, 12, 2]; //           Hello ! <|im_end|> \n         (trained)
  const bye = [1, 5, 13, 2]; //           <|im_start|> user \n Bye <|im_end|> \n
  const byeDot = [13, 9, 2]; //           Bye . <|im_end|> \n             (trained)
  const ids = [...sys, ...hi, ...head, ...hello, ...bye, ...head, ...byeDot];
  const mask = (a: number[]) => a.map(() => X);

  it('multi-turn with a system prompt: every assistant turn, end-of-turn included', () => {
    const r = encodeRow(chatml, { kind: 'chat', messages: CONV }, { template: withTemplate(BUILTIN_TEMPLATES.chatml), trainOn: 'responses', maxLength: 64 }, 'row 1');
    expect(r.ids).toEqual(ids);
    expect(r.labels).toEqual([...mask(sys), ...mask(hi), ...mask(head), ...hello, ...mask(bye), ...mask(head), ...byeDot]);
    expect(trainedTokens(r.labels)).toBe(6);
    expect(r.segments.filter((s) => s.trained).map((s) => s.text)).toEqual(['Hello!<|im_end|>\n', 'Bye.<|im_end|>\n']);
    expect(r.cut).toBe('none');
  });

  it('the last response only, or everything', () => {
    const o = { template: withTemplate(BUILTIN_TEMPLATES.chatml), maxLength: 64 };
    const last = encodeRow(chatml, { kind: 'chat', messages: CONV }, { ...o, trainOn: 'last_response' }, 'row 1');
    expect(last.labels).toEqual([...mask(ids.slice(0, 21)), ...byeDot]);
    const all = encodeRow(chatml, { kind: 'chat', messages: CONV }, { ...o, trainOn: 'all' }, 'row 1');
    expect(all.labels).toEqual(ids);
    expect(trainedTokens(all.labels)).toBe(23);
  });

  it('Alpaca with and without input, through the built-in alpaca template', () => {
    const preamble = [23, 24, 25, 26, 27, 28, 19, 29, 9, 30, 19, 31, 27, 32, 33, 34, 35, 9];
    const instr = [14, 15, 16, 18, 19, 20]; // ### Instruction : Name a color
    const respHead = [14, 17, 16]; //          ### Response :
    const t = chooseTemplate(plain, undefined, { format: 'alpaca' });
    expect(t.name).toBe('alpaca');
    expect(t.note).toMatch(/no chat_template/);
    const empty = encodeRow(plain, formatRow({ instruction: 'Name a color', input: '', output: 'Red' }, 'alpaca', 'row 1'), { template: t, trainOn: 'responses', maxLength: 64 }, 'row 1');
    expect(empty.ids).toEqual([...preamble, ...instr, ...respHead, 21, 3]);
    expect(empty.labels).toEqual([...mask(preamble), ...mask(instr), ...mask(respHead), 21, 3]);
    const withInput = encodeRow(plain, formatRow({ instruction: 'Name a color', input: 'Sky', output: 'Red' }, 'alpaca', 'row 2'), { template: t, trainOn: 'responses', maxLength: 64 }, 'row 2');
    expect(withInput.ids).toEqual([...preamble, ...instr, 22, ...respHead, 21, 3]);
  });

  it('ShareGPT from/value and OpenAI messages give the same conversation', () => {
    const share = formatRow({ conversations: JSON.stringify([{ from: 'system', value: 'Be brief.' }, { from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }]) }, 'sharegpt', 'line 1');
    const msgs = formatRow({ messages: CONV.slice(0, 3) }, 'messages', 'row 1');
    expect(share).toEqual(msgs);
    const r = encodeRow(chatml, share, { template: chooseTemplate(chatml), trainOn: 'responses', maxLength: 64 }, 'line 1');
    expect(r.ids).toEqual([...sys, ...hi, ...head, ...hello]);
    expect(r.labels).toEqual([...mask(sys), ...mask(hi), ...mask(head), ...hello]);
  });

  it('prompt/completion: plain text, no template, EOS appended and trained on', () => {
    const r = encodeRow(plain, formatRow({ prompt: 'Hi', completion: 'Hello!' }, 'prompt_completion', 'row 1'), { template: null, trainOn: 'responses', maxLength: 64 }, 'row 1');
    expect(r.ids).toEqual([10, 11, 12, 3]);
    expect(r.labels).toEqual([X, 11, 12, 3]);
  });

  it('truncation keeps the response: the prompt loses its start; a too-long response is cut; nothing left is dropped', () => {
    const o = { template: withTemplate(BUILTIN_TEMPLATES.chatml), trainOn: 'responses' as const };
    const kept = encodeRow(chatml, { kind: 'chat', messages: CONV }, { ...o, maxLength: 10 }, 'row 1');
    expect(kept.ids).toEqual(ids.slice(14)); // [<|im_end|>, ...bye, ...head, ...byeDot]
    expect(kept.labels).toEqual([2, ...mask(bye), ...mask(head), ...byeDot]);
    expect(kept.cut).toBe('prompt');
    const long = encodeRow(plain, { kind: 'plain', prompt: 'Hi', completion: 'Hello! Hello! Hello!' }, { ...o, template: null, maxLength: 5 }, 'row 2');
    expect(long.ids).toEqual([10, 11, 12, 11, 12]);
    expect(long.labels).toEqual([X, 11, 12, 11, 12]);
    expect(long.cut).toBe('response');
    const data = encodeChatData(plain, [
      { row: { prompt: 'Be brief. Be brief.', completion: 'Hello! Hello! Hello!' }, where: 'line 1' },
      { row: { prompt: 'Hi', completion: 'Hello!' }, where: 'line 2' },
    ], { format: 'prompt_completion', template: null, trainOn: 'responses', maxLength: 6 });
    expect(data.examples).toEqual([{ inputIds: [10, 11, 12, 3], labels: [X, 11, 12, 3] }]);
    expect(data.issues).toHaveLength(1);
    expect(data.issues[0].where).toBe('line 1');
    expect(data.issues[0].message).toMatch(/no response token is left/);
    expect(data.stats).toEqual({ rows: 2, tokens: 4, trainedTokens: 3, promptCut: 0, responseCut: 0, dropped: 1 });
  });

  it('encodeExamples keeps given labels and truncates keeping the response', () => {
    const [e] = encodeExamples([{ inputIds: ids, labels: [...mask(ids.slice(0, 21)), ...byeDot] }], { task: 'CAUSAL_LM', maxLength: 4 });
    expect(e.ids).toEqual([6, ...byeDot]);
    expect(e.labels).toEqual([X, ...byeDot]);
    expect(() => encodeExamples([{ inputIds: [1, 2], labels: [1] }], { task: 'CAUSAL_LM', maxLength: 4 })).toThrow(/one entry per input id/);
    expect(() => encodeExamples([{ inputIds: [1, 2], labels: [1, 5] }], { task: 'CAUSAL_LM', maxLength: 4 })).toThrow(/the id itself or -100/);
  });
});

describe('formats and templates: detection and errors', () => {
  it('detects the format from the columns (and a sample row for message lists)', () => {
    expect(detectChatFormat(['instruction', 'input', 'output'])).toBe('alpaca');
    expect(detectChatFormat(['conversations'])).toBe('sharegpt');
    expect(detectChatFormat(['messages'])).toBe('messages');
    expect(detectChatFormat(['conversation'], { conversation: [{ role: 'user', content: 'x' }] })).toBe('messages');
    expect(detectChatFormat(['messages'], { messages: '[{"from": "human", "value": "x"}]' })).toBe('sharegpt');
    expect(detectChatFormat(['prompt', 'completion'])).toBe('prompt_completion');
    expect(detectChatFormat(['prompt', 'response'])).toBeNull(); // the plain prompt + response mapping
    expect(detectChatFormat(['text', 'label'])).toBeNull();
  });

  it('an explicit format that does not fit the columns names what is missing', () => {
    expect(() => resolveFormat('alpaca', ['text'], 'data.jsonl')).toThrow(/alpaca format needs column "instruction" and "output or response", but the columns are text\. A row in that format looks like \{"instruction"/);
    expect(resolveFormat('auto', ['text'], 'x')).toBeNull();
  });

  it('bad rows say which row and what it should look like', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(EngineError);
        return (e as EngineError).message;
      }
      throw new Error('no error');
    };
    expect(err(() => formatRow({ messages: 'hello' }, 'messages', 'line 3'))).toMatch(/^line 3: column "messages" is not a list of messages/);
    expect(err(() => formatRow({ messages: [{ role: 'user', content: 'Hi' }] }, 'messages', 'line 4'))).toMatch(/^line 4: the conversation has no assistant turn/);
    expect(err(() => formatRow({ conversations: [{ from: 'alien', value: 'Hi' }] }, 'sharegpt', 'line 5'))).toMatch(/^line 5, message 1: unknown speaker "alien"/);
    expect(err(() => formatRow({ instruction: 'x', output: '' }, 'alpaca', 'line 6'))).toMatch(/"output" is empty/);
    expect(err(() => chooseTemplate(plain, 'model'))).toMatch(/has no chat_template.*chatml, alpaca/);
    expect(err(() => chooseTemplate(plain, 'llama9'))).toMatch(/neither a built-in/);
    const broken = { name: 'x.jinja', template: '{% for m in messages %}', source: 'file' as const };
    expect(err(() => encodeRow(plain, { kind: 'chat', messages: CONV }, { template: broken, trainOn: 'responses', maxLength: 9 }, 'line 7'))).toMatch(/^line 7: the x\.jinja chat template failed/);
  });

  it("the model's own template is used by default", () => {
    expect(chooseTemplate(chatml)).toEqual({ name: 'model', template: BUILTIN_TEMPLATES.chatml, source: 'model' });
  });
});

describe('masked tokens in the loss and accuracy', () => {
  it('eval loss and next-token accuracy count only the trained positions', async () => {
    // Reference logits of gpt2-tiny (transformers) for row 0 of the reference ids; LoRA's B starts at zero, so the
    // adapted model gives the same logits. Trained positions 3..6: the loss is the mean of -log softmax(logits[t-1])[ids[t]].
    const ref = fixtureTensors('models', 'gpt2-tiny', 'reference.safetensors');
    const allIds = Array.from(ref.get('input_ids')!.data as ArrayLike<number>).map(Number);
    const ids = allIds.slice(0, 7);
    const logits = ref.get('logits')!.data as Float32Array; // [2, 7, 1000]
    const V = 1000;
    let nll = 0;
    let right = 0;
    for (let t = 3; t < 7; t++) {
      const row = logits.subarray((t - 1) * V, t * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      nll += lse - row[ids[t]];
      if (row.indexOf(max) === ids[t]) right += 1;
    }
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const s = await TrainingSession.create({
      config, weights: tensors, task: 'CAUSAL_LM', peft: loraConfig({ taskType: 'CAUSAL_LM', r: 2, targetModules: ['c_attn'] }),
      data: { train: [{ inputIds: ids, labels: [X, X, X, ...ids.slice(3)] }], validation: [{ inputIds: ids, labels: [X, X, X, ...ids.slice(3)] }] },
      args: { maxSteps: 1, batchSize: 1 },
    });
    try {
      const m = await s.evaluate();
      expect(m.evalLoss).toBeCloseTo(nll / 4, 5);
      expect(m.accuracy).toBeCloseTo(right / 4, 10);
    } finally {
      s.dispose();
    }
  });
});

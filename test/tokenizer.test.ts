import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { heldoutCorpusText } from '../scripts/build-datasets';
import {
  bytesToUnicode,
  countWords,
  EOS_TOKEN,
  trainBpe,
  trainTokenizerFiles,
} from '../scripts/train-tokenizer';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { loadTokenizer, type Tokenizer } from '../src/engine/tokenizer';

const DIR = join(import.meta.dirname, '..', 'public', 'models', 'sotu-gpt2');
const readJson = (name: string) => JSON.parse(readFileSync(join(DIR, name), 'utf8')) as Record<string, any>;

let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizerFromDir(DIR);
});

describe('built-in sotu-gpt2 tokenizer', () => {
  it('has 4096 ids with <|endoftext|> = 0 as bos / eos / pad / unk', () => {
    expect(tok.vocabSize).toBe(4096);
    expect(tok.tokenToId(EOS_TOKEN)).toBe(0);
    expect(tok.idToToken(0)).toBe(EOS_TOKEN);
    expect(tok.eosTokenId).toBe(0);
    expect(tok.bosTokenId).toBe(0);
    expect(tok.padTokenId).toBe(0);
    expect(tok.unkTokenId).toBe(0);
    expect(tok.specialTokenIds).toEqual([0]);
    expect(tok.modelMaxLength).toBe(256);
    expect(tok.applyChatTemplate).toBeUndefined();
  });

  it('lays out ids as special, 256 byte characters in code-point order, then merges', () => {
    const json = readJson('tokenizer.json');
    const vocab = json.model.vocab as Record<string, number>;
    const bytes = [...bytesToUnicode()].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
    bytes.forEach((ch, i) => expect(vocab[ch]).toBe(i + 1));
    expect(Object.keys(vocab)).toHaveLength(4096);
    expect(new Set(Object.values(vocab)).size).toBe(4096);
    expect(json.model.merges.length).toBeGreaterThanOrEqual(4096 - 257);
    for (const m of json.model.merges as string[]) {
      const [l, r] = m.split(' ');
      expect(vocab[l!]).toBeTypeOf('number');
      expect(vocab[r!]).toBeTypeOf('number');
      expect(vocab[l! + r!]).toBeTypeOf('number');
    }
  });

  it('is a GPT-2 style tokenizers file', () => {
    const json = readJson('tokenizer.json');
    expect(json.version).toBe('1.0');
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer).toEqual({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.post_processor.type).toBe('ByteLevel');
    expect(json.normalizer).toBeNull();
    expect(json.added_tokens).toEqual([
      { id: 0, content: EOS_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ]);
    const config = readJson('tokenizer_config.json');
    expect(config).toMatchObject({
      tokenizer_class: 'GPT2Tokenizer',
      bos_token: EOS_TOKEN,
      eos_token: EOS_TOKEN,
      unk_token: EOS_TOKEN,
      pad_token: EOS_TOKEN,
      model_max_length: 256,
      add_prefix_space: false,
      clean_up_tokenization_spaces: false,
    });
    expect(readJson('special_tokens_map.json')).toEqual({
      bos_token: EOS_TOKEN,
      eos_token: EOS_TOKEN,
      pad_token: EOS_TOKEN,
      unk_token: EOS_TOKEN,
    });
  });

  const samples = [
    'Fellow-Citizens of the Senate and of the House of Representatives:',
    '   three leading spaces, and two trailing  ',
    'line one\nline two\n\n\ttabbed\r\nwindows line',
    'Ünïcödé: naïve café, Ελληνικά, русский, 日本語の文章, العربية',
    'emoji 🎉🚀 and a family 👨‍👩‍👧 and flags 🇺🇸',
    "it's we'll they've I'd don't -- $1,234.56 (50%) #tag @user",
    ' .,;:!? spaces before punctuation ; and after .',
    'x'.repeat(300),
    '\u0000\u0001 control \u007f chars \uFEFF',
  ];

  it.each(samples)('round-trips %j exactly', (s) => {
    const ids = tok.encode(s);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
    expect(tok.decode(ids)).toBe(s);
  });

  it('encodes "" to [] and decodes [] to ""', () => {
    expect(tok.encode('')).toEqual([]);
    expect(tok.decode([])).toBe('');
  });

  it('uses its merges: common words are single tokens, and there are fewer tokens than bytes', () => {
    for (const w of [' the', ' of', ' and', ' United', ' States', ' Congress', ' Government']) {
      expect(tok.encode(w), w).toHaveLength(1);
    }
    const s = 'The Congress of the United States shall have power to lay and collect taxes.';
    expect(tok.encode(s).length).toBeLessThan(Buffer.byteLength(s) / 3);
    // An unseen byte sequence still encodes (byte fallback through the 256 byte tokens).
    expect(tok.encode('\u{10FFFF}')).toHaveLength(4);
  });

  it('treats <|endoftext|> in text as the special token and can skip it when decoding', () => {
    expect(tok.encode(EOS_TOKEN)).toEqual([0]);
    const ids = tok.encode(`first document${EOS_TOKEN}second`);
    expect(ids.filter((id) => id === 0)).toHaveLength(1);
    expect(tok.decode(ids)).toBe(`first document${EOS_TOKEN}second`);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('first documentsecond');
    // addSpecialTokens adds nothing for a GPT-2 style post-processor
    expect(tok.encode('abc', { addSpecialTokens: true })).toEqual(tok.encode('abc', { addSpecialTokens: false }));
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([4096])).toThrow(/outside the vocabulary/);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
  });

  it('compresses held-out speeches to more than 4 bytes per token and round-trips them', () => {
    const path = join(import.meta.dirname, '..', 'scripts', 'data', 'sotu-heldout.txt');
    const text = existsSync(path) ? readFileSync(path, 'utf8') : heldoutCorpusText();
    const ids = tok.encode(text);
    const bytesPerToken = Buffer.byteLength(text) / ids.length;
    // measured 4.38 bytes/token on the 23 held-out addresses (1.05 MB)
    expect(bytesPerToken).toBeGreaterThan(4);
    expect(bytesPerToken).toBeLessThan(6);
    expect(tok.decode(ids)).toBe(text);
  });
});

describe('loadTokenizer (in-memory JSON)', () => {
  it('works without tokenizer_config.json, taking the single special token as bos / eos', async () => {
    const t = await loadTokenizer({ tokenizerJson: readJson('tokenizer.json') });
    expect(t.eosTokenId).toBe(0);
    expect(t.bosTokenId).toBe(0);
    expect(t.padTokenId).toBe(0);
    expect(t.encode('hello world')).toEqual(tok.encode('hello world'));
    expect(t.decode(t.encode(' a , b .'))).toBe(' a , b .');
  });

  it('exposes applyChatTemplate when the config has a chat template', async () => {
    const t = await loadTokenizer({
      tokenizerJson: readJson('tokenizer.json'),
      tokenizerConfig: {
        ...readJson('tokenizer_config.json'),
        chat_template:
          "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
      },
    });
    expect(t.applyChatTemplate).toBeTypeOf('function');
    const text = t.applyChatTemplate!([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    expect(text).toBe('user: Hi\nassistant:');
  });

  it('rejects something that is not a tokenizers file', async () => {
    await expect(loadTokenizer({ tokenizerJson: { vocab: {} } })).rejects.toThrow(/model/);
  });
});

describe('byte-level BPE trainer', () => {
  const TEXT = [
    'the cat sat on the mat; the cat ate the rat.',
    'The rats and the cats: naïve café owners, 1234 5678!',
    'Über-long words: antidisestablishmentarianism antidisestablishmentarianism.',
    'emoji 🎉🎉 and\nnew lines\n\n  indented',
  ];

  it('merges the most frequent pair first, ties going to the smaller ids', () => {
    // words: "the" x1, " the" x2, " cat" x1 -> (t,h) and (h,e) both 3; "h" < "t", so "h e" wins the tie.
    const model = trainBpe(countWords(['the the the cat']), { vocabSize: 260 });
    expect(model.vocab[0]).toBe(EOS_TOKEN);
    expect(model.vocab).toHaveLength(260);
    expect(model.merges[0]).toEqual(['h', 'e']);
    expect(model.merges.slice(1)).toEqual([
      ['t', 'he'],
      ['Ġ', 'the'],
    ]);
  });

  it('stops at minFrequency', () => {
    const model = trainBpe(countWords(['ab cd']), { vocabSize: 1000 });
    expect(model.merges).toEqual([]);
    expect(model.vocab).toHaveLength(257);
  });

  it('is deterministic: retraining gives byte-identical files', () => {
    const a = trainTokenizerFiles(TEXT, { vocabSize: 290 });
    const b = trainTokenizerFiles([...TEXT], { vocabSize: 290 });
    expect(a.files['tokenizer.json']).toBe(b.files['tokenizer.json']);
    expect(a.files['tokenizer_config.json']).toBe(b.files['tokenizer_config.json']);
    expect(a.files['special_tokens_map.json']).toBe(b.files['special_tokens_map.json']);
    expect(a.model.vocab.length).toBe(290);
  });

  it('produces a tokenizer that transformers.js loads and that encodes training words like the training merges', async () => {
    const { files, model } = trainTokenizerFiles(TEXT, { vocabSize: 290 });
    const t = await loadTokenizer({
      tokenizerJson: JSON.parse(files['tokenizer.json']),
      tokenizerConfig: JSON.parse(files['tokenizer_config.json']),
    });
    expect(t.vocabSize).toBe(290);
    for (const s of TEXT) expect(t.decode(t.encode(s))).toBe(s);
    // frequent words become single tokens, a twice-seen long word a few
    expect(model.merges.some(([l, r]) => l + r === 'Ġthe')).toBe(true);
    expect(t.encode(' the')).toEqual([model.vocab.indexOf('Ġthe')]);
    expect(t.encode(' antidisestablishmentarianism').length).toBeLessThan(8);
  });
});

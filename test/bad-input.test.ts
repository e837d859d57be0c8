/**
 * Every class of bad input ends in a typed EngineError whose message names the file (and tensor / line) and says
 * what to do; nothing crashes and nothing is accepted silently. Unit tests on the engine, then the same classes
 * through the CLI as a subprocess. Every bad file is made here, in a temp folder or in memory.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFinite, loadAdapter } from '../src/engine/adapter/import';
import { EngineError, type ErrorCode } from '../src/engine/errors';
import { downloadModel } from '../src/engine/io/download';
import { LocalFilesSource } from '../src/engine/io/model-source';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir, readJson, readSafetensorsFile } from '../src/engine/io/node-files';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { readSafetensors, writeSafetensors, type LoadedTensor } from '../src/engine/io/safetensors';
import { checkDecodedText, decodeText, readJsonObject } from '../src/engine/io/text';
import { buildModel, resolveArchitecture, SUPPORTED_MODEL_TYPES } from '../src/engine/models';
import { parsePeftConfig } from '../src/engine/peft/config';
import { describeValue, quoteValue } from '../src/engine/quote';
import { checkTokenizerFitsModel, loadTokenizer, tokenizerJsonVocabSize } from '../src/engine/tokenizer';
import { checkLabelsFit, dataWarnings, parseDataFile, toExamples } from '../src/engine/train/data-parse';
import { FIX, fixtureModel } from './helpers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const GPT2 = join(FIX, 'models', 'gpt2-tiny');
const BERT = join(FIX, 'models', 'bert-tiny-seqcls');
const LORA = join(FIX, 'adapters', 'gpt2-lora');
const SOTU = join(ROOT, 'public', 'models', 'sotu-gpt2');
const DEEP = 10_000;

/** The EngineError `fn` throws, checked for its code. */
function thrown(fn: () => unknown, code: ErrorCode): EngineError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected ${code}`);
}

async function rejected(p: Promise<unknown>, code: ErrorCode): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected ${code}`);
}

const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const utf16le = (s: string) => new Uint8Array(Buffer.from(`\uFEFF${s}`, 'utf16le'));
const utf16be = (s: string) => {
  const b = Buffer.from(`\uFEFF${s}`, 'utf16le');
  for (let i = 0; i + 1 < b.length; i += 2) [b[i], b[i + 1]] = [b[i + 1], b[i]];
  return new Uint8Array(b);
};
const utf32 = (s: string, le: boolean) => {
  const cps = [0xfeff, ...[...s].map((c) => c.codePointAt(0)!)];
  const out = new Uint8Array(cps.length * 4);
  const dv = new DataView(out.buffer);
  cps.forEach((c, i) => dv.setUint32(4 * i, c, le));
  return out;
};
/** Decodes as a browser's File.text() does (UTF-8, replacement characters, no failure). */
const lenient = (b: Uint8Array) => new TextDecoder().decode(b);

/** A safetensors file from a raw header string and data bytes. */
function rawSafetensors(header: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

let tmp: string;
beforeAll(async () => {
  await useNodeBackend('cpu');
  tmp = mkdtempSync(join(tmpdir(), 'peft-bad-input-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A copy of a fixture folder in tmp, with some files replaced. */
function modelCopy(name: string, from: string, replace: Record<string, string | Uint8Array> = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'adapter_config.json', 'adapter_model.safetensors']) {
    try {
      copyFileSync(join(from, f), join(dir, f));
    } catch {
      // not in this fixture
    }
  }
  for (const [f, content] of Object.entries(replace)) writeFileSync(join(dir, f), content);
  return dir;
}

const gpt2Config = () => JSON.parse(readFileSync(join(GPT2, 'config.json'), 'utf8')) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------------
describe('1. values quoted in messages are bounded (deep nesting never overflows the stack)', () => {
  it('quoteValue: a 10000-deep array, a long string, an object and a cycle stay short and never throw', () => {
    const deep = JSON.parse(nested(DEEP));
    expect(() => JSON.stringify(deep)).toThrow(RangeError); // what the messages used to do
    const q = quoteValue(deep);
    expect(q.length).toBeLessThanOrEqual(81);
    expect(q.startsWith('[[[[')).toBe(true);
    expect(q.endsWith('…')).toBe(true);
    expect(quoteValue('x'.repeat(1_000_000), 20)).toBe(`"${'x'.repeat(20)}…`);
    expect(quoteValue({ a: 1, b: [true, null], c: 'd' })).toBe('{"a": 1, "b": [true, null], "c": "d"}');
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = cyc;
    expect(quoteValue(cyc)).toBe('{"a": 1, "self": [circular]}');
    expect(describeValue('8')).toBe('the string "8"');
    expect(describeValue(8.5)).toBe('the number 8.5');
    expect(describeValue([1, 2])).toBe('an array [1, 2]');
    expect(describeValue(null)).toBe('null');
  });

  it('a safetensors header with a shape or dtype nested 10000 levels deep: BAD_SAFETENSORS naming file and tensor', () => {
    for (const field of ['shape', 'dtype', 'data_offsets']) {
      const entry: Record<string, string> = { dtype: '"F32"', shape: '[2]', data_offsets: '[0, 8]' };
      entry[field] = nested(DEEP);
      const header = `{"w": {${Object.entries(entry).map(([k, v]) => `"${k}": ${v}`).join(', ')}}}`;
      const e = thrown(() => readSafetensors(rawSafetensors(header, new Uint8Array(8)), 'deep.safetensors'), 'BAD_SAFETENSORS');
      expect(e.message).toMatch(/^deep\.safetensors: tensor 'w'/);
      expect(e.message).toContain('[[[[');
      expect(e.message.length).toBeLessThan(400);
    }
  });

  it('config.json with a value nested 10000 levels deep: BAD_CONFIG naming the field, bounded', () => {
    const raw = JSON.parse(`{"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1, "n_positions": 8, "vocab_size": 10, "n_inner": ${nested(DEEP)}}`);
    const e = thrown(() => resolveArchitecture(raw, undefined, '/m/config.json'), 'BAD_CONFIG');
    expect(e.message).toMatch(/^\/m\/config\.json: n_inner must be a number, got an array \[\[\[\[/);
    expect(e.message.length).toBeLessThan(200);
    // model_type itself nested
    const t = thrown(() => resolveArchitecture({ model_type: JSON.parse(nested(DEEP)) }), 'BAD_CONFIG');
    expect(t.message).toMatch(/model_type must be a string such as "gpt2", got an array \[\[\[/);
  });

  it('adapter_config.json with a deeply nested value: BAD_PEFT_CONFIG, bounded', () => {
    const cfg = readFileSync(join(LORA, 'adapter_config.json'), 'utf8').replace('"target_modules": [', `"target_modules": [${nested(DEEP)}, `);
    const e = thrown(() => parsePeftConfig(cfg), 'BAD_PEFT_CONFIG');
    expect(e.message).toMatch(/target_modules must be a regex string, a list of module names, or null; got an array \[\[\[/);
    expect(e.message.length).toBeLessThan(250);
    const p = thrown(() => parsePeftConfig(`{"peft_type": ${nested(DEEP)}}`), 'BAD_PEFT_CONFIG');
    expect(p.message).toMatch(/Unknown peft_type \[\[\[/);
  });

  it('tokenizer.json with a deeply nested model.type: BAD_CONFIG naming the file', async () => {
    const e = await rejected(loadTokenizer({ tokenizerJson: { model: { type: JSON.parse(nested(DEEP)), vocab: {} } }, fileName: 'x/tokenizer.json' }), 'BAD_CONFIG');
    expect(e.message).toMatch(/^x\/tokenizer\.json: model\.type \[\[\[/);
    expect(e.message.length).toBeLessThan(300);
  });

  it('a JSONL row with a deeply nested value is reported by line', () => {
    const t = parseDataFile('d.jsonl', `{"text": "ok"}\n{"text": "b", "meta": ${nested(DEEP)}}\n{"text": "c"}\n`);
    expect(t.rows).toHaveLength(2);
    expect(t.issues).toEqual([expect.objectContaining({ line: 2, message: expect.stringMatching(/^the value of "meta" is nested too deeply/) })]);
  });

  it('JSON nested too deeply for JSON.parse is malformed JSON naming the file, never a RangeError', () => {
    // Deep enough that JSON.parse itself gives up on some engines; either way the result is a typed error or a value.
    const text = `{"a": ${nested(2_000_000)}}`;
    try {
      readJsonObject(text, 'huge.json');
    } catch (e) {
      expect(e).toBeInstanceOf(EngineError);
      expect((e as Error).message).toMatch(/^huge\.json: invalid JSON \(nested too deeply/);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('2. tokenizers: unknown model types and ids past the model vocabulary are errors', () => {
  const sotuJson = () => JSON.parse(readFileSync(join(SOTU, 'tokenizer.json'), 'utf8')) as Record<string, any>;

  it('model.type other than BPE / WordPiece / Unigram / WordLevel: BAD_CONFIG naming the file', async () => {
    const json = sotuJson();
    json.model.type = 'SentencePieceMagic';
    const e = await rejected(loadTokenizer({ tokenizerJson: json, fileName: 'my/tokenizer.json' }), 'BAD_CONFIG');
    expect(e.message).toBe(
      'my/tokenizer.json: model.type "SentencePieceMagic" is not a tokenizer model PEFT Studio can run (supported: BPE, WordPiece, Unigram, WordLevel). Use the tokenizer.json that came with the model.',
    );
    // The supported one still loads (and names its file).
    const ok = await loadTokenizerFromDir(SOTU);
    expect(ok.file).toBe(join(SOTU, 'tokenizer.json'));
  });

  it('a tokenizer with more ids than vocab_size: BAD_CONFIG naming the tokenizer file and the vocab size', async () => {
    expect(tokenizerJsonVocabSize(sotuJson())).toBe(4096);
    expect(() => checkTokenizerFitsModel(4096, 4096, 't.json')).not.toThrow();
    const e = thrown(() => checkTokenizerFitsModel(4096, 1000, 'sotu/tokenizer.json', 'gpt2-tiny/config.json'), 'BAD_CONFIG');
    expect(e.message).toMatch(/^sotu\/tokenizer\.json has 4096 token ids \(0\.\.4095\) but the model's vocab_size is 1000 \(gpt2-tiny\/config\.json\)/);
    expect(e.message).toMatch(/use the tokenizer that came with the model/);
  });

  it('the loader (studio and Hub path) refuses such a tokenizer before downloading the weights', async () => {
    const files = ['config.json', 'model.safetensors'].map((n) => new File([readFileSync(join(GPT2, n))], n));
    files.push(new File([readFileSync(join(SOTU, 'tokenizer.json'))], 'tokenizer.json'));
    const e = await rejected(downloadModel(new LocalFilesSource(files, 'gpt2-tiny')), 'BAD_CONFIG');
    expect(e.message).toMatch(/^tokenizer\.json in folder "gpt2-tiny" has 4096 token ids .* vocab_size is 1000 \(config\.json in folder "gpt2-tiny"\)/);
    const bad = sotuJson();
    bad.model.type = 'Nope';
    files[2] = new File([JSON.stringify(bad)], 'tokenizer.json');
    const t = await rejected(downloadModel(new LocalFilesSource(files, 'gpt2-tiny')), 'BAD_CONFIG');
    expect(t.message).toMatch(/^tokenizer\.json in folder "gpt2-tiny": model\.type "Nope" is not a tokenizer model/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('3. adapter weights holding NaN / Inf are refused on import', () => {
  const loraWith = (name: string, index: number, value: number) => {
    const { tensors } = readSafetensorsFile(join(LORA, 'adapter_model.safetensors'));
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of tensors) {
      const data = Float32Array.from(t.data as Float32Array);
      if (k === name) data[index] = value;
      out.set(k, { shape: t.shape, data });
    }
    return writeSafetensors(out);
  };
  const NAME = 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight';

  for (const [what, v] of [['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity]] as const) {
    it(`${what}: ADAPTER_MISMATCH naming the file and the tensor`, () => {
      const model = fixtureModel('gpt2-tiny');
      try {
        const e = thrown(() => loadAdapter(model, {
          config: readFileSync(join(LORA, 'adapter_config.json'), 'utf8'), weights: loraWith(NAME, 3, v), weightsName: 'ad/adapter_model.safetensors',
        }), 'ADAPTER_MISMATCH');
        expect(e.message).toBe(
          `ad/adapter_model.safetensors: tensor '${NAME}' holds non-finite weights (${what} at index 3; 1 of 768 values are NaN or infinite). ` +
            'The adapter is corrupt, or its training diverged: use an earlier checkpoint or train it again.',
        );
      } finally {
        model.dispose();
      }
    });
  }

  it('finite weights pass (and integer tensors are not checked)', () => {
    const tensors = new Map<string, LoadedTensor>([
      ['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) }],
      ['ids', { dtype: 'I32', shape: [1], data: new Int32Array([7]) }],
    ]);
    expect(() => checkFinite(tensors, 'x')).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('4. UTF-16 / UTF-32, binary and non-UTF-8 files are named for what they are', () => {
  const csv = 'text,label\nhello,0\nworld,1\n';
  const cases: [string, Uint8Array, string][] = [
    ['UTF-16 LE', utf16le(csv), 'data.csv is UTF-16 LE text (it starts with a byte-order mark); save it as UTF-8'],
    ['UTF-16 BE', utf16be(csv), 'data.csv is UTF-16 BE text (it starts with a byte-order mark); save it as UTF-8'],
    ['UTF-32 LE', utf32(csv, true), 'data.csv is UTF-32 LE text (it starts with a byte-order mark); save it as UTF-8'],
    ['UTF-32 BE', utf32(csv, false), 'data.csv is UTF-32 BE text (it starts with a byte-order mark); save it as UTF-8'],
    ['UTF-16 LE without a BOM', new Uint8Array(Buffer.from(csv, 'utf16le')), 'data.csv looks like UTF-16 LE text without a byte-order mark (every other byte is NUL); save it as UTF-8'],
    ['binary (NUL bytes)', new Uint8Array([0x74, 0x65, 0x78, 0x74, 0x0a, 0x01, 0x00, 0x02, 0x03]), 'data.csv looks like a binary file, not text (NUL byte at byte 6); check that this is the file you meant and that it is saved as UTF-8 text'],
  ];
  for (const [what, bytes, message] of cases) {
    it(`${what}: bytes (CLI) and text decoded leniently (studio) give the same message`, () => {
      expect(thrown(() => decodeText(bytes, 'data.csv'), 'BAD_DATA').message).toBe(message);
      expect(thrown(() => parseDataFile('data.csv', bytes), 'BAD_DATA').message).toBe(message);
      expect(thrown(() => parseDataFile('data.csv', lenient(bytes)), 'BAD_DATA').message).toBe(message);
    });
  }

  it('a ZIP (e.g. an .xlsx saved as .csv) says so', () => {
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00, 0x08, 0x00]);
    expect(thrown(() => decodeText(zip, 'sheet.csv'), 'BAD_DATA').message).toBe(
      'sheet.csv looks like a binary file, not text: it is a ZIP archive (an Excel .xlsx workbook is one: export the sheet as "CSV UTF-8") (NUL byte at byte 5)',
    );
  });

  it('Windows-1252 / Latin-1 text: the byte, its offset and its line', () => {
    const latin1 = new Uint8Array(Buffer.from('text,label\ncaf\xe9,0\n', 'latin1'));
    expect(thrown(() => decodeText(latin1, 'd.csv'), 'BAD_DATA').message).toBe(
      'd.csv is not valid UTF-8 text (byte 0xE9 at byte 14, line 2); it is probably in a legacy encoding such as Windows-1252 or Latin-1: save it as UTF-8',
    );
    expect(thrown(() => parseDataFile('d.csv', lenient(latin1)), 'BAD_DATA').message).toMatch(/^d\.csv is not valid UTF-8 text \(line 2 has bytes that are not UTF-8/);
  });

  it('a UTF-8 byte-order mark is fine and dropped; plain UTF-8 (accents, emoji) passes', () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('text\ncafé 😀\n')]);
    expect(decodeText(withBom, 'd.txt')).toBe('text\ncafé 😀\n');
    const t = parseDataFile('d.csv', withBom);
    expect(t.columns).toEqual(['text']);
    expect(t.rows).toEqual([{ text: 'café 😀' }]);
    expect(checkDecodedText('\uFEFFabc', 'd.txt')).toBe('abc');
  });

  it('JSON the engine reads (config.json, tokenizer.json, adapter_config.json) goes through the same checks', () => {
    const cfg = readFileSync(join(GPT2, 'config.json'), 'utf8');
    const dir = modelCopy('utf16-config', GPT2, { 'config.json': utf16le(cfg) });
    expect(thrown(() => loadModelDir(dir), 'BAD_CONFIG').message).toBe(`${join(dir, 'config.json')} is UTF-16 LE text (it starts with a byte-order mark); save it as UTF-8`);
    expect(thrown(() => readJson(join(dir, 'config.json')), 'BAD_CONFIG').message).toMatch(/UTF-16 LE/);
    // The studio's loader (File bytes -> parseJsonObject) too.
    expect(thrown(() => readJsonObject(new Uint8Array([0x7b, 0x00, 0x7d]), 'config.json in folder "m"'), 'BAD_CONFIG').message)
      .toMatch(/^config\.json in folder "m" looks like a binary file/);
    const ad = readFileSync(join(LORA, 'adapter_config.json'), 'utf8');
    expect(thrown(() => parsePeftConfig(utf16be(ad), 'a/adapter_config.json'), 'BAD_PEFT_CONFIG').message)
      .toBe('a/adapter_config.json is UTF-16 BE text (it starts with a byte-order mark); save it as UTF-8');
    expect(thrown(() => parsePeftConfig(lenient(utf16le(ad))), 'BAD_PEFT_CONFIG').message).toMatch(/^adapter_config\.json is UTF-16 LE text/);
  });

  it('tokenizer.json in UTF-16: BAD_CONFIG naming the path', async () => {
    const dir = join(tmp, 'tok-utf16');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), utf16le(readFileSync(join(SOTU, 'tokenizer.json'), 'utf8')));
    const e = await rejected(loadTokenizerFromDir(dir), 'BAD_CONFIG');
    expect(e.message).toBe(`${join(dir, 'tokenizer.json')} is UTF-16 LE text (it starts with a byte-order mark); save it as UTF-8`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('5. config fields: missing model_type and wrong JSON types are named as such', () => {
  it('no model_type: says it is missing (not "undefined")', () => {
    const raw = gpt2Config();
    delete raw.model_type;
    const e = thrown(() => resolveArchitecture(raw, undefined, 'm/config.json'), 'BAD_CONFIG');
    expect(e.message).toBe(`m/config.json has no model_type: it must name the architecture (one of ${SUPPORTED_MODEL_TYPES.join(', ')}), as every config.json saved by transformers does.`);
    expect(SUPPORTED_MODEL_TYPES.slice(0, 5)).toEqual(['gpt2', 'llama', 'qwen2', 'mistral', 'bert']);
    expect(e.message).not.toMatch(/undefined/);
  });

  it('a string where a number belongs: the JSON type and the quoted value', () => {
    const llama = { model_type: 'llama', hidden_size: '8', num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, vocab_size: 10 };
    expect(thrown(() => resolveArchitecture(llama), 'BAD_CONFIG').message).toBe('config.json: hidden_size must be a number, got the string "8"');
    const gpt2 = { ...gpt2Config(), n_layer: 2.5 };
    expect(thrown(() => resolveArchitecture(gpt2), 'BAD_CONFIG').message).toBe('config.json: n_layer must be a positive integer, got the number 2.5');
    const eps = { ...gpt2Config(), layer_norm_epsilon: '1e-5' };
    expect(thrown(() => resolveArchitecture(eps), 'BAD_CONFIG').message).toBe('config.json: layer_norm_epsilon must be a number, got the string "1e-5"');
    const act = { ...gpt2Config(), scale_attn_weights: 'yes' };
    expect(thrown(() => resolveArchitecture(act), 'BAD_CONFIG').message).toBe('config.json: scale_attn_weights must be true or false, got the string "yes"');
    const missing = { ...gpt2Config(), vocab_size: undefined };
    expect(thrown(() => resolveArchitecture(missing), 'BAD_CONFIG').message).toBe('config.json: vocab_size is missing; it must be a positive integer');
  });

  it('num_labels, id2label and token ids of the wrong type are errors, not silently defaults', () => {
    const bert = JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(thrown(() => resolveArchitecture({ ...bert, num_labels: '3' }), 'BAD_CONFIG').message).toBe('config.json: num_labels must be a number, got the string "3"');
    expect(thrown(() => resolveArchitecture({ ...bert, id2label: ['neg', 'pos'] }), 'BAD_CONFIG').message).toMatch(/^config\.json: id2label must be an object .* got an array \["neg", "pos"\]$/);
    expect(thrown(() => resolveArchitecture({ ...bert, pad_token_id: '0' }), 'BAD_CONFIG').message).toBe('config.json: pad_token_id must be a token id (an integer) or a list of them, got the string "0"');
  });

  it("adapter_config.json: r as a string says so (PEFT's own wording for a bad number stays)", () => {
    const cfg = JSON.parse(readFileSync(join(LORA, 'adapter_config.json'), 'utf8'));
    expect(thrown(() => parsePeftConfig({ ...cfg, r: '8' }), 'BAD_PEFT_CONFIG').message).toBe('r must be a number (a positive integer); got the string "8".');
    expect(thrown(() => parsePeftConfig({ ...cfg, r: 0 }), 'BAD_PEFT_CONFIG').message).toBe('`r` should be a positive integer value but the value passed is 0');
    expect(thrown(() => parsePeftConfig({ ...cfg, lora_alpha: '16' }), 'BAD_PEFT_CONFIG').message).toBe('lora_alpha must be a number; got the string "16".');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('6. safetensors offsets past the end of the file', () => {
  const f32 = (b: number, e: number, n: number) => ({ dtype: 'F32', shape: [n], data_offsets: [b, e] });

  it('a tensor whose data lies outside the file is reported as such (not as a "gap")', () => {
    const header = JSON.stringify({ a: f32(0, 4, 1), b: f32(1000, 1004, 1) });
    const bytes = rawSafetensors(header, new Uint8Array(8));
    const start = 8 + new TextEncoder().encode(header).length;
    const e = thrown(() => readSafetensors(bytes, 'm.safetensors'), 'BAD_SAFETENSORS');
    expect(e.message).toBe(
      `m.safetensors: tensor 'b' lies outside the file: its data ends at byte ${start + 1004} but the file is ${bytes.length} bytes. ` +
        "The file is truncated or corrupt (the header describes 1004 bytes of tensor data but only 8 are present; tensor 'b' onwards is cut off); download it again.",
    );
    expect(e.message).not.toMatch(/gap/);
  });

  it('a real checkpoint cut short names the first tensor that is cut off', () => {
    const bytes = new Uint8Array(readFileSync(join(GPT2, 'model.safetensors')));
    const e = thrown(() => readSafetensors(bytes.subarray(0, bytes.length - 1000), 'model.safetensors'), 'BAD_SAFETENSORS');
    expect(e.message).toMatch(/^model\.safetensors: tensor '.+' lies outside the file: its data ends at byte \d+ but the file is \d+ bytes\. The file is truncated/);
    expect(e.message).toMatch(/download it again\.$/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('7. classification labels, tiny datasets and malformed JSONL lines', () => {
  it('labels that do not fit a fixed head: BAD_DATA naming the label and both counts', () => {
    expect(() => checkLabelsFit(['neg', 'pos'], 2, 'd.csv', '--num-labels 2')).not.toThrow();
    const e = thrown(() => checkLabelsFit(['a', 'b', 'c'], 2, 'd.csv', 'config.json num_labels'), 'BAD_DATA');
    expect(e.message).toBe('d.csv: label "c" is class 3 of 3 (a, b, c) but config.json num_labels fixes the model to 2 classes; use data with at most 2 labels, or change config.json num_labels');
  });

  it("a checkpoint head of the wrong size says how many classes it has", () => {
    const { config, tensors } = loadModelDir(BERT);
    const e = thrown(() => buildModel({ ...config, num_labels: 3 }, tensors), 'SHAPE_MISMATCH');
    expect(e.message).toMatch(/The checkpoint's classification head has 2 classes but num_labels is 3/);
  });

  it('1-2 usable rows: a warning from the engine (toExamples) for the studio and the CLI', () => {
    expect(dataWarnings('d.csv', 3)).toEqual([]);
    const t = parseDataFile('tiny.csv', 'text,label\nhi,0\nbye,1\n');
    const r = toExamples(t, { kind: 'text-label', text: 'text', label: 'label' });
    expect(r.warnings).toEqual(['tiny.csv has only 2 usable rows: far too few to fine-tune on (the model will just memorise them); add more examples']);
    const one = toExamples(parseDataFile('one.txt', 'just one paragraph\n'), { kind: 'text', text: 'text' });
    expect(one.warnings[0]).toMatch(/^one\.txt has only 1 usable row: /);
  });

  it('a malformed JSONL line is reported with its line even when only one row is left; lone-CR lines split', () => {
    const t = parseDataFile('d.jsonl', '{"text": "a"}\n{"text": "b"');
    expect(t.rows).toHaveLength(1);
    expect(t.issues).toEqual([expect.objectContaining({ file: 'd.jsonl', line: 2, message: expect.stringMatching(/^invalid JSON/) })]);
    const cr = parseDataFile('cr.jsonl', '{"text": "a"}\r{"text": "b"}\r');
    expect(cr.rows).toEqual([{ text: 'a' }, { text: 'b' }]);
    expect(cr.lines).toEqual([1, 2]);
  });
});


// ---------------------------------------------------------------------------------------------------------------
// The CLI, as a subprocess: one "error:" line, no stack, exit 1 (2 for usage), nothing written.

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, timeout, env: { ...process.env, PEFT_STUDIO_DEBUG: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function errorLine(r: Run): string {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/Maximum call stack|RangeError/);
  return lines[0];
}

async function failsWith(args: string[], code: number, re: RegExp): Promise<string> {
  const r = await cli(args);
  const line = errorLine(r);
  expect(line).toMatch(re);
  expect(r.code, r.stderr).toBe(code);
  return line;
}

describe('CLI subprocess: each class ends in one clear error line', () => {
  const out = () => join(tmp, `out-${Math.random().toString(36).slice(2)}`);
  const ids = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ input_ids: [5, 6, 7, 8, 9].slice(i % 2) })).join('\n');

  it('1. deep nesting: config.json (inspect), safetensors header (logits), adapter_config.json (logits), JSONL (train)', async () => {
    const cfgDir = modelCopy('cli-deep-config', GPT2, { 'config.json': JSON.stringify(gpt2Config()).replace(/}$/, `, "n_inner": ${nested(DEEP)}}`) });
    await failsWith(['inspect', cfgDir], 1, new RegExp(`^error: ${join(cfgDir, 'config.json').replace(/[.]/g, '\\.')}: n_inner must be a number, got an array \\[\\[\\[`));

    const header = `{"transformer.wte.weight": {"dtype": "F32", "shape": ${nested(DEEP)}, "data_offsets": [0, 4]}}`;
    const stDir = modelCopy('cli-deep-st', GPT2, { 'model.safetensors': rawSafetensors(header, new Uint8Array(4)) });
    await failsWith(['logits', '--model', stDir, '--input-ids', '1,2', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*cli-deep-st\/model\.safetensors: tensor 'transformer\.wte\.weight': shape must be|^error: .*cli-deep-st\/model\.safetensors: tensor 'transformer\.wte\.weight': shape \[\[/);

    const adDir = modelCopy('cli-deep-adapter', LORA, {
      'adapter_config.json': readFileSync(join(LORA, 'adapter_config.json'), 'utf8').replace('"lora_alpha": 8', `"lora_alpha": ${nested(DEEP)}`),
    });
    await failsWith(['logits', '--model', GPT2, '--adapter', adDir, '--input-ids', '1,2', '--out', out(), '--backend', 'cpu'], 1,
      /^error: lora_alpha must be a number; got an array \[\[\[/);

    const data = join(tmp, 'deep.jsonl');
    writeFileSync(data, `${ids(4)}\n{"input_ids": [1, 2], "x": ${nested(DEEP)}}\n`);
    await failsWith(['train', '--model', GPT2, '--data', data, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*deep\.jsonl line 5: the value of "x" is nested too deeply to use/);
  });

  it('2. tokenizer: unknown model.type, and more ids than the model vocabulary (--tokenizer and the model folder)', async () => {
    const text = join(tmp, 'text.jsonl');
    writeFileSync(text, Array.from({ length: 6 }, (_, i) => JSON.stringify({ text: `We shall prevail ${i}.` })).join('\n'));
    await failsWith(['train', '--model', GPT2, '--tokenizer', SOTU, '--data', text, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      new RegExp(`^error: ${join(SOTU, 'tokenizer.json').replace(/[.]/g, '\\.')} has 4096 token ids \\(0\\.\\.4095\\) but the model's vocab_size is 1000 \\(.*gpt2-tiny/config\\.json\\).*use the tokenizer that came with the model\\.$`));

    const own = modelCopy('cli-own-tokenizer', GPT2, { 'tokenizer.json': readFileSync(join(SOTU, 'tokenizer.json')) });
    await failsWith(['train', '--model', own, '--data', text, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /cli-own-tokenizer\/tokenizer\.json has 4096 token ids .* vocab_size is 1000/);

    const json = JSON.parse(readFileSync(join(SOTU, 'tokenizer.json'), 'utf8'));
    json.model.type = 'Mystery';
    const tokDir = join(tmp, 'cli-tok-type');
    mkdirSync(tokDir, { recursive: true });
    writeFileSync(join(tokDir, 'tokenizer.json'), JSON.stringify(json));
    await failsWith(['train', '--model', GPT2, '--tokenizer', tokDir, '--data', text, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /cli-tok-type\/tokenizer\.json: model\.type "Mystery" is not a tokenizer model PEFT Studio can run \(supported: BPE, WordPiece, Unigram, WordLevel\)/);
  });

  it('3. an adapter with a NaN weight: logits refuses it, naming the tensor', async () => {
    const { tensors } = readSafetensorsFile(join(LORA, 'adapter_model.safetensors'));
    const bad = new Map([...tensors].map(([k, t]) => {
      const data = Float32Array.from(t.data as Float32Array);
      if (k.endsWith('h.1.attn.c_proj.lora_A.weight')) data[0] = NaN;
      return [k, { shape: t.shape, data }];
    }));
    const dir = modelCopy('cli-nan-adapter', LORA, { 'adapter_model.safetensors': writeSafetensors(bad) });
    await failsWith(['logits', '--model', GPT2, '--adapter', dir, '--input-ids', '1,2,3', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*cli-nan-adapter\/adapter_model\.safetensors: tensor 'base_model\.model\.transformer\.h\.1\.attn\.c_proj\.lora_A\.weight' holds non-finite weights \(NaN at index 0;/);
  });

  it('4. UTF-16 and binary data, a Latin-1 CSV, a UTF-16 config.json and adapter_config.json', async () => {
    const rows = `input_ids\n${Array.from({ length: 4 }, () => '"[5, 6, 7]"').join('\n')}\n`;
    const u16 = join(tmp, 'u16.csv');
    writeFileSync(u16, utf16le(rows));
    await failsWith(['train', '--model', GPT2, '--data', u16, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*u16\.csv is UTF-16 LE text \(it starts with a byte-order mark\); save it as UTF-8$/);
    const bin = join(tmp, 'data.jsonl');
    writeFileSync(bin, new Uint8Array([0x7b, 0x22, 0x00, 0x01, 0xff, 0x10, 0x00]));
    await failsWith(['train', '--model', GPT2, '--data', bin, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*data\.jsonl looks like a binary file, not text \(NUL byte at byte 2\)/);
    const txt = join(tmp, 'u16.txt');
    writeFileSync(txt, utf16be('one\n\ntwo\n'));
    await failsWith(['train', '--model', GPT2, '--data', txt, '--txt-lines', '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /u16\.txt is UTF-16 BE text/);
    const latin = join(tmp, 'latin1.csv');
    writeFileSync(latin, Buffer.from('input_ids,note\n"[5, 6]",caf\xe9\n', 'latin1'));
    await failsWith(['train', '--model', GPT2, '--data', latin, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /latin1\.csv is not valid UTF-8 text \(byte 0xE9 at byte 27, line 2\)/);

    const cfgDir = modelCopy('cli-u16-config', GPT2, { 'config.json': utf16le(readFileSync(join(GPT2, 'config.json'), 'utf8')) });
    await failsWith(['inspect', cfgDir], 1, /cli-u16-config\/config\.json is UTF-16 LE text \(it starts with a byte-order mark\); save it as UTF-8$/);
    const adDir = modelCopy('cli-u16-adapter', LORA, { 'adapter_config.json': utf16le(readFileSync(join(LORA, 'adapter_config.json'), 'utf8')) });
    await failsWith(['logits', '--model', GPT2, '--adapter', adDir, '--input-ids', '1,2', '--out', out(), '--backend', 'cpu'], 1,
      /cli-u16-adapter\/adapter_config\.json is UTF-16 LE text/);
  });

  it('5. config.json without model_type, and a string where a number belongs', async () => {
    const c = gpt2Config();
    delete c.model_type;
    const a = modelCopy('cli-no-type', GPT2, { 'config.json': JSON.stringify(c) });
    const line = await failsWith(['inspect', a], 1, /cli-no-type\/config\.json has no model_type: it must name the architecture/);
    expect(line).not.toMatch(/undefined/);
    const b = modelCopy('cli-string-num', GPT2, { 'config.json': JSON.stringify({ ...gpt2Config(), n_head: '2' }) });
    await failsWith(['targets', b, '--target-modules', 'c_attn'], 1, /cli-string-num\/config\.json: n_head must be a number, got the string "2"$/);
  });

  it('6. safetensors data outside the file', async () => {
    const full = new Uint8Array(readFileSync(join(GPT2, 'model.safetensors')));
    const dir = modelCopy('cli-truncated', GPT2, { 'model.safetensors': full.subarray(0, full.length - 4096) });
    await failsWith(['logits', '--model', dir, '--input-ids', '1,2', '--out', out(), '--backend', 'cpu'], 1,
      new RegExp(`cli-truncated/model\\.safetensors: tensor '.+' lies outside the file: its data ends at byte \\d+ but the file is ${full.length - 4096} bytes\\. The file is truncated .*download it again\\.$`));
  });

  it('7. labels past a fixed num_labels, a tiny dataset warning, a malformed JSONL line with one row left', async () => {
    const csv = join(tmp, 'labels3.csv');
    writeFileSync(csv, 'input_ids,label\n"[1, 20, 2]",0\n"[1, 30, 2]",1\n"[1, 40, 2]",2\n"[1, 21, 2]",0\n');
    const flag = await failsWith(['train', '--model', BERT, '--data', csv, '--task', 'seq_cls', '--num-labels', '2', '--steps', '1', '--out', out(), '--backend', 'cpu'], 2,
      /labels3\.csv line 4: label "2" needs 3 classes but the model has 2/);
    expect(flag).toMatch(/line 4/);
    const cfg = modelCopy('cli-num-labels', BERT, { 'config.json': JSON.stringify({ ...JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8')), num_labels: 2 }) });
    await failsWith(['train', '--model', cfg, '--data', csv, '--task', 'seq_cls', '--steps', '1', '--out', out(), '--backend', 'cpu'], 2,
      /labels3\.csv line 4: label "2" needs 3 classes but the model has 2/);
    // Config silent, checkpoint head of 2: the error says the head's class count.
    await failsWith(['train', '--model', BERT, '--data', csv, '--task', 'seq_cls', '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /classification head has 2 classes but num_labels is 3/);

    const tiny = join(tmp, 'tiny.jsonl');
    writeFileSync(tiny, ids(2));
    const r = await cli(['train', '--model', GPT2, '--data', tiny, '--steps', '1', '--out', out(), '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: ${tiny} has only 2 usable rows: far too few to fine-tune on (the model will just memorise them); add more examples`);

    const bad = join(tmp, 'one-left.jsonl');
    writeFileSync(bad, '{"input_ids": [5, 6, 7]}\n{"input_ids": [5, 6,\n');
    await failsWith(['train', '--model', GPT2, '--data', bad, '--steps', '1', '--out', out(), '--backend', 'cpu'], 1,
      /^error: .*one-left\.jsonl line 2: invalid JSON/);
  });
});

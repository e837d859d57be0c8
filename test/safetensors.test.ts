import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError, type ErrorCode } from '../src/engine/errors';
import {
  bf16ToF32, convert, f16ToF32, headerLength, parseHeader, readSafetensors, writeSafetensors,
  type TensorToWrite,
} from '../src/engine/io/safetensors';
import { loadModelDir, readJson, readSafetensorsFile } from '../src/engine/io/node-files';

const FIXTURES = join(__dirname, 'fixtures');

function findSafetensors(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findSafetensors(p));
    else if (name.endsWith('.safetensors')) out.push(p);
  }
  return out.sort();
}

/** Runs `fn`, expecting an EngineError with `code`; returns its message. */
function engineError(fn: () => unknown, code: ErrorCode = 'BAD_SAFETENSORS'): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return (e as EngineError).message;
  }
  throw new Error('expected an EngineError');
}

/** Builds a file from a raw header string and a data section, without any validation. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), declaredLength?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const f32Entry = (shape: number[], b: number, e: number) => ({ dtype: 'F32', shape, data_offsets: [b, e] });

describe('byte-exact round trip of reference files', () => {
  const files = findSafetensors(FIXTURES);

  it('finds the fixture files', () => {
    expect(files.length).toBeGreaterThanOrEqual(22);
  });

  for (const file of files) {
    it(relative(FIXTURES, file), () => {
      const original = new Uint8Array(readFileSync(file));
      const { tensors, metadata } = readSafetensors(original, file);
      const toWrite = new Map<string, TensorToWrite>();
      for (const [name, t] of tensors) {
        expect(t.dtype === 'F32' || t.dtype === 'I64').toBe(true);
        toWrite.set(name, { shape: t.shape, data: t.data as Float32Array | Int32Array, dtype: t.dtype as 'F32' | 'I64' });
      }
      const written = writeSafetensors(toWrite, metadata);
      expect(written.length).toBe(original.length);
      expect(Buffer.from(written).equals(Buffer.from(original))).toBe(true);
    });
  }
});

describe('reading', () => {
  it('reads I64 reference inputs as Int32Array', () => {
    const file = join(FIXTURES, 'models/gpt2-tiny/reference.safetensors');
    const { tensors, metadata } = readSafetensors(readFileSync(file), file);
    expect(metadata).toEqual({ format: 'pt' });
    const ids = tensors.get('input_ids')!;
    expect(ids.dtype).toBe('I64');
    expect(ids.shape).toEqual([2, 7]);
    expect(ids.data).toBeInstanceOf(Int32Array);
    expect(Array.from(ids.data)).toEqual([169, 760, 418, 471, 225, 197, 898, 907, 899, 778, 292, 470, 0, 0]);
    expect(ids.data[7 + 5]).toBe(0);
    expect(ids.data[7 + 6]).toBe(0);
    expect(Array.from(tensors.get('labels')!.data.slice(12))).toEqual([-100, -100]);
    expect(Array.from(tensors.get('attention_mask')!.data)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    const loss = tensors.get('loss')!;
    expect(loss.shape).toEqual([]);
    expect(loss.data).toBeInstanceOf(Float32Array);
    expect(loss.data[0]).toBeCloseTo(6.947719573974609, 6);
    expect(tensors.get('logits')!.data.length).toBe(2 * 7 * 1000);
  });

  it('parses the header from just the first 8+N bytes', () => {
    const file = join(FIXTURES, 'adapters/gpt2-lora/adapter_model.safetensors');
    const bytes = new Uint8Array(readFileSync(file));
    const n = headerLength(bytes.subarray(0, 8), file);
    const h = parseHeader(bytes.subarray(0, 8 + n), file, bytes.length);
    expect(h.dataStart).toBe(8 + n);
    expect(Object.keys(h.tensors)).toHaveLength(12);
    expect(h.tensors['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight']).toEqual({
      dtype: 'F32', shape: [4, 64], data_offsets: [0, 1024],
    });
    expect(h.metadata).toEqual({ format: 'pt' });
  });

  it('decodes every dtype', () => {
    const le = (arr: ArrayBufferView) => new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    const parts: [string, string, number[], Uint8Array][] = [
      ['f64', 'F64', [2], le(new Float64Array([1.5, -1e300]))],
      ['f16', 'F16', [2], le(new Uint16Array([0x3c00, 0xc000]))],
      ['bf16', 'BF16', [2], le(new Uint16Array([0x3f80, 0xc000]))],
      ['i32', 'I32', [2], le(new Int32Array([-7, 2147483647]))],
      ['i16', 'I16', [2], le(new Int16Array([-32768, 5]))],
      ['i8', 'I8', [2], le(new Int8Array([-128, 127]))],
      ['u8', 'U8', [2], new Uint8Array([0, 255])],
      ['bool', 'BOOL', [2], new Uint8Array([1, 0])],
    ];
    const header: Record<string, unknown> = {};
    let off = 0;
    for (const [name, dtype, shape, bytes] of parts) {
      header[name] = { dtype, shape, data_offsets: [off, off + bytes.length] };
      off += bytes.length;
    }
    const data = new Uint8Array(off);
    off = 0;
    for (const [, , , bytes] of parts) {
      data.set(bytes, off);
      off += bytes.length;
    }
    // Odd header length on purpose: tensor data then sits at unaligned file offsets.
    const { tensors } = readSafetensors(rawFile(JSON.stringify(header) + ' ', data), 'all.safetensors');
    const get = (n: string) => Array.from(tensors.get(n)!.data);
    expect(get('f64')).toEqual([1.5, -Infinity]);
    expect(tensors.get('f64')!.data).toBeInstanceOf(Float32Array);
    expect(get('f16')).toEqual([1, -2]);
    expect(get('bf16')).toEqual([1, -2]);
    expect(get('i32')).toEqual([-7, 2147483647]);
    expect(get('i16')).toEqual([-32768, 5]);
    expect(tensors.get('i8')!.data).toBeInstanceOf(Int32Array);
    expect(get('i8')).toEqual([-128, 127]);
    expect(tensors.get('u8')!.data).toBeInstanceOf(Uint8Array);
    expect(get('u8')).toEqual([0, 255]);
    expect(get('bool')).toEqual([1, 0]);
  });

  it('accepts an empty file (no tensors) and zero-size tensors', () => {
    const empty = writeSafetensors({}, null);
    expect(Array.from(empty)).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]); // crate's test_empty
    expect(readSafetensors(empty).tensors.size).toBe(0);
    const z = writeSafetensors({ z: { shape: [0, 3], data: new Float32Array(0) }, a: { shape: [1], data: new Float32Array([2]) } });
    const back = readSafetensors(z, 'z.safetensors');
    expect(back.tensors.get('z')!.shape).toEqual([0, 3]);
    expect(Array.from(back.tensors.get('a')!.data)).toEqual([2]);
  });
});

describe('f16 / bf16 conversion', () => {
  it('converts known f16 values', () => {
    const bits = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7e00];
    const out = f16ToF32(new Uint16Array(bits));
    expect(Array.from(out.slice(0, 10))).toEqual([
      1, -2, 0.5, 65504, Infinity, -Infinity, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0,
    ]);
    expect(Object.is(out[9], -0)).toBe(true);
    expect(Number.isNaN(out[10])).toBe(true);
  });

  it('matches the IEEE formula for all 65536 f16 values', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0x1f ? (m ? NaN : s * Infinity) : e === 0 ? s * m * 2 ** -24 : s * 2 ** (e - 15) * (1 + m / 1024);
      if (Number.isNaN(want)) expect(Number.isNaN(out[h])).toBe(true);
      else if (!Object.is(out[h], want)) throw new Error(`f16 0x${h.toString(16)}: got ${out[h]}, want ${want}`);
    }
  });

  it('converts known bf16 values', () => {
    const bits = [0x3f80, 0xc000, 0x3f00, 0x4049, 0x7f7f, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7fc0];
    const out = bf16ToF32(new Uint16Array(bits));
    expect(Array.from(out.slice(0, 9))).toEqual([
      1, -2, 0.5, 3.140625, 3.3895313892515355e38, Infinity, -Infinity, 2 ** -133, -0,
    ]);
    expect(Number.isNaN(out[9])).toBe(true);
  });

  it('convert() works on unaligned chunks of any dtype', () => {
    const buf = new Uint8Array(1 + 4);
    buf.set([0x00, 0x3c, 0x00, 0xc0], 1); // f16 [1, -2] at an odd offset
    expect(Array.from(convert('F16', buf.subarray(1)))).toEqual([1, -2]);
    const i64 = new Uint8Array(new BigInt64Array([-5n, 1n << 40n]).buffer);
    expect(Array.from(convert('I64', i64))).toEqual([-5, 2 ** 40]);
    expect(() => convert('F32', new Uint8Array(3))).toThrow(EngineError);
  });
});

describe('writing', () => {
  it('round-trips a random F32 map with metadata', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const map = new Map<string, TensorToWrite>();
    for (let i = 0; i < 20; i++) {
      const shape = [1 + (i % 5), 1 + ((i * 7) % 11)];
      map.set(`layer.${i}.w`, { shape, data: Float32Array.from({ length: shape[0] * shape[1] }, rand) });
    }
    map.set('ids', { shape: [3], data: new Int32Array([-1, 0, 2147483647]), dtype: 'I64' });
    map.set('mask', { shape: [2], data: new Int32Array([1, 0]), dtype: 'I32' });
    const bytes = writeSafetensors(map, { format: 'pt', note: 'héllo "quoted"\n' });
    expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0);
    const back = readSafetensors(bytes, 'rand.safetensors');
    expect(back.metadata).toEqual({ format: 'pt', note: 'héllo "quoted"\n' });
    expect(back.tensors.size).toBe(22);
    for (const [name, t] of map) {
      const got = back.tensors.get(name)!;
      expect(got.shape).toEqual(t.shape);
      expect(got.dtype).toBe(t.dtype ?? 'F32');
      expect(Array.from(got.data)).toEqual(Array.from(t.data));
    }
    // I64 first (highest rank in the reference's Dtype enum), then F32 by name, then I32.
    const order = [...back.tensors.keys()];
    expect(order[0]).toBe('ids');
    expect(order[1]).toBe('layer.0.w');
    expect(order[2]).toBe('layer.1.w');
    expect(order[3]).toBe('layer.10.w');
    expect(order[order.length - 1]).toBe('mask');
  });

  it('matches the reference crate serialization test byte for byte', () => {
    const out = writeSafetensors({ 'attn.0': { shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } }, null);
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(out[0]).toBe(64);
    expect(new TextDecoder().decode(out.subarray(8, 8 + 64))).toBe(header);
    expect(Array.from(out.subarray(72))).toEqual([0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]);
    const meta = writeSafetensors({}, { framework: 'pt' });
    expect(new TextDecoder().decode(meta.subarray(8))).toBe('{"__metadata__":{"framework":"pt"}}     ');
  });

  it('defaults metadata to {"format":"pt"}', () => {
    const out = writeSafetensors({ x: { shape: [1], data: new Float32Array([1]) } });
    expect(readSafetensors(out).metadata).toEqual({ format: 'pt' });
  });

  it('sorts names by code point like the reference (UTF-8 byte order)', () => {
    const out = writeSafetensors({
      '\u{1F600}': { shape: [1], data: new Float32Array([1]) },
      '\uFF21': { shape: [1], data: new Float32Array([2]) },
    });
    // UTF-16 order would put the emoji (surrogate 0xD83D) first.
    expect([...readSafetensors(out).tensors.keys()]).toEqual(['\uFF21', '\u{1F600}']);
  });

  it('rejects bad input', () => {
    expect(engineError(() => writeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }), 'BAD_ARGUMENT')).toMatch(/'w'/);
    expect(engineError(() => writeSafetensors({ w: { shape: [1], data: new Float32Array([0.5]), dtype: 'I64' } }), 'BAD_ARGUMENT')).toMatch(/'w'/);
    engineError(() => writeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }), 'BAD_ARGUMENT');
    engineError(() => writeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }), 'BAD_ARGUMENT');
  });
});

describe('malformed files give BAD_SAFETENSORS naming the file', () => {
  const F = 'broken.safetensors';
  const data8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /only 5 bytes/],
    ['header length 0', rawFile('', new Uint8Array(0), 0), /header length is 0/],
    ['header length over the cap', rawFile('{}', new Uint8Array(0), 100_000_001), /exceeds/],
    ['header length >= 4 GiB', rawFile('{}', new Uint8Array(0), 2 ** 40), /exceeds/],
    ['header past the end of the file', rawFile('{}', new Uint8Array(0), 64), /past the end/],
    ['invalid JSON', rawFile('{"a": ', new Uint8Array(0)), /not valid JSON/],
    ['JSON not an object', rawFile('[1,2]'), /not an object/],
    ['invalid UTF-8', rawFile('{"\xff"}').map((b, i) => (i === 10 ? 0xff : b)), /UTF-8/],
    ['missing dtype', rawFile(JSON.stringify({ w: { shape: [2], data_offsets: [0, 8] } }), data8), /'w'.*missing 'dtype'/],
    ['missing shape', rawFile(JSON.stringify({ w: { dtype: 'F32', data_offsets: [0, 8] } }), data8), /'w'.*missing 'shape'/],
    ['missing data_offsets', rawFile(JSON.stringify({ w: { dtype: 'F32', shape: [2] } }), data8), /'w'.*missing 'data_offsets'/],
    ['unknown dtype', rawFile(JSON.stringify({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }), data8), /'w'.*unsupported dtype "Q4"/],
    ['negative dim', rawFile(JSON.stringify({ w: f32Entry([-2], 0, 8) }), data8), /'w'.*invalid dimension -2/],
    ['non-integer dim', rawFile(JSON.stringify({ w: f32Entry([1.5], 0, 8) }), data8), /'w'.*invalid dimension 1.5/],
    ['offsets not a pair', rawFile(JSON.stringify({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }), data8), /'w'.*data_offsets/],
    ['begin > end', rawFile(JSON.stringify({ w: f32Entry([0], 8, 0) }), data8), /'w'.*begin > end/],
    ['byte length mismatch', rawFile(JSON.stringify({ w: f32Entry([3], 0, 8) }), data8), /'w'.*needs 12 bytes.*span 8/],
    ['end beyond the data section', rawFile(JSON.stringify({ w: f32Entry([4], 0, 16) }), data8), /truncated.*'w'/],
    ['overlapping tensors', rawFile(JSON.stringify({ a: f32Entry([2], 0, 8), b: f32Entry([1], 4, 8) }), data8), /'b'.*overlaps tensor 'a'/],
    ['gap between tensors', rawFile(JSON.stringify({ a: f32Entry([1], 0, 4), b: f32Entry([0], 8, 8) }), data8), /'b'.*gap/],
    ['gap at the start', rawFile(JSON.stringify({ a: f32Entry([1], 4, 8) }), data8), /'a'.*gap/],
    ['trailing bytes', rawFile(JSON.stringify({ a: f32Entry([1], 0, 4) }), data8), /trailing/],
    ['metadata value not a string', rawFile(JSON.stringify({ __metadata__: { n: 1 } })), /__metadata__/],
    [
      'I64 outside int32',
      rawFile(JSON.stringify({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }), new Uint8Array(new BigInt64Array([1n << 33n]).buffer)),
      /'ids'.*int32/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    it(what, () => {
      const msg = engineError(() => readSafetensors(bytes, F));
      expect(msg).toContain(F);
      expect(msg).toMatch(re);
    });
  }

  it('a real file with its last 100 bytes cut off', () => {
    const file = join(FIXTURES, 'adapters/gpt2-lora/adapter_model.safetensors');
    const bytes = new Uint8Array(readFileSync(file));
    const msg = engineError(() => readSafetensors(bytes.subarray(0, bytes.length - 100), file));
    expect(msg).toContain(file);
    expect(msg).toMatch(/truncated.*22528 bytes.*22428.*'base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight' onwards/);
  });

  it('a file cut inside the header', () => {
    const file = join(FIXTURES, 'adapters/gpt2-lora/adapter_model.safetensors');
    const bytes = new Uint8Array(readFileSync(file)).subarray(0, 100);
    expect(engineError(() => readSafetensors(bytes, file))).toMatch(/past the end/);
    expect(engineError(() => parseHeader(bytes, file))).toMatch(/truncated/);
  });
});

describe('node-files', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'peft-st-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads gpt2-tiny', () => {
    const dir = join(FIXTURES, 'models/gpt2-tiny');
    const m = loadModelDir(dir);
    expect(m.config.model_type).toBe('gpt2');
    expect(m.files).toEqual([join(dir, 'model.safetensors')]);
    const wte = m.tensors.get('transformer.wte.weight')!;
    expect(wte.shape).toEqual([1000, 64]);
    expect(wte.data).toBeInstanceOf(Float32Array);
    expect(m.tensors.has('lm_head.weight')).toBe(false); // tied, not stored
    let params = 0;
    for (const t of m.tensors.values()) params += t.data.length;
    expect(params).toBe(172288);
  });

  it('loads a 2-shard index', () => {
    const dir = join(tmp, 'sharded');
    const src = readSafetensorsFile(join(FIXTURES, 'models/gpt2-tiny/model.safetensors')).tensors;
    const names = [...src.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    mkdirSync(dir);
    shards.forEach((shard, s) => {
      const part: Record<string, TensorToWrite> = {};
      for (const n of names.slice(s * half, (s + 1) * half)) {
        part[n] = { shape: src.get(n)!.shape, data: src.get(n)!.data as Float32Array };
        weightMap[n] = shard;
      }
      writeFileSync(join(dir, shard), writeSafetensors(part));
    });
    writeFileSync(join(dir, 'config.json'), readFileSync(join(FIXTURES, 'models/gpt2-tiny/config.json')));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

    const m = loadModelDir(dir);
    expect(m.files).toEqual(shards.map((s) => join(dir, s)));
    expect([...m.tensors.keys()].sort()).toEqual([...names].sort());
    for (const n of names) expect(Array.from(m.tensors.get(n)!.data)).toEqual(Array.from(src.get(n)!.data));

    rmSync(join(dir, shards[1]));
    const msg = engineError(() => loadModelDir(dir), 'MISSING_WEIGHT');
    expect(msg).toContain(shards[1]);
  });

  it('config-only folder gives an empty tensor map', () => {
    const dir = mkdtempSync(join(tmp, 'cfg-'));
    writeFileSync(join(dir, 'config.json'), '{"model_type":"gpt2"}');
    const m = loadModelDir(dir);
    expect(m.tensors.size).toBe(0);
    expect(m.files).toEqual([]);
  });

  it('missing or invalid config.json is BAD_CONFIG naming the path', () => {
    const dir = mkdtempSync(join(tmp, 'bad-'));
    expect(engineError(() => loadModelDir(dir), 'BAD_CONFIG')).toContain(join(dir, 'config.json'));
    writeFileSync(join(dir, 'config.json'), '{not json');
    expect(engineError(() => loadModelDir(dir), 'BAD_CONFIG')).toMatch(/config\.json.*invalid JSON/);
    writeFileSync(join(dir, 'config.json'), '[]');
    engineError(() => readJson(join(dir, 'config.json')), 'BAD_CONFIG');
  });

  it('a corrupt model.safetensors is BAD_SAFETENSORS naming the path', () => {
    const dir = mkdtempSync(join(tmp, 'corrupt-'));
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'model.safetensors'), new Uint8Array(4));
    expect(engineError(() => loadModelDir(dir))).toContain(join(dir, 'model.safetensors'));
  });
});

describe('odd tensor names', () => {
  it('keeps "__proto__" as an ordinary tensor name', () => {
    const file = rawFile('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4));
    const h = parseHeader(file, 'p.safetensors', file.length);
    expect(Object.keys(h.tensors)).toEqual(['__proto__']);
    expect(readSafetensors(file).tensors.get('__proto__')!.shape).toEqual([1]);
  });
});

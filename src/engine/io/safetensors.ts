/**
 * safetensors reader/writer, framework-free (runs in Node and in a Web Worker).
 *
 * File layout: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header, then the data section.
 * The checks and the writer mirror the reference Rust crate (huggingface/safetensors, `tensor.rs`):
 * - reading: tensors sorted by data_offsets must tile the data section exactly (no gaps, no overlap) and
 *   the last one must end at the end of the file; each byte length must equal dtype size × product(shape).
 * - writing: tensors sorted by descending dtype "alignment" rank (the crate's Dtype enum order), then by
 *   name (byte-wise); compact JSON with `__metadata__` first and fields dtype, shape, data_offsets;
 *   header padded with spaces to a multiple of 8 so the data section starts 8-aligned.
 * Writing then matches the Python `safetensors.torch.save_file` output byte for byte (tested on fixtures).
 *
 * All typed-array reinterpretation assumes a little-endian host, which every browser/Node platform we
 * target is; a big-endian host is rejected up front rather than producing garbage.
 */
import { EngineError } from '../errors';
import { quoteValue } from '../quote';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface HeaderEntry {
  dtype: DType;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Record<string, HeaderEntry>;
  metadata: Record<string, string>;
  /** byte offset where the data section starts (8 + header length) */
  dataStart: number;
}

export interface LoadedTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array | Int32Array;
  /** default F32 (an Int32Array is then converted to float); I64/I32 need integer values. */
  dtype?: 'F32' | 'I64' | 'I32';
}

/** Same cap as the reference crate (100_000_000 bytes): a larger header is almost surely corrupt. */
export const MAX_HEADER_SIZE = 100_000_000;

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/**
 * Position in the reference crate's `Dtype` enum ("increasing alignment order"). The writer sorts by this
 * descending. Note the enum puts F64 below I64, so I64 tensors come before F64 and F32 ones.
 */
const DTYPE_RANK: Readonly<Record<DType, number>> = {
  BOOL: 0, U8: 1, I8: 2, I16: 3, F16: 4, BF16: 5, I32: 6, F32: 7, F64: 8, I64: 9,
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(fileName: string | undefined, message: string): never {
  throw new EngineError('BAD_SAFETENSORS', `${fileName ?? 'safetensors file'}: ${message}`);
}

/** A tensor or metadata name as messages show it: a name from the file may be any length. */
function nm(name: string): string {
  return name.length > 120 ? `${name.slice(0, 120)}…` : name;
}

function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** A plain Uint8Array view (a Node Buffer's own methods differ subtly, e.g. `slice`). */
function toBytes(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  return bytes instanceof Uint8Array ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
}

/** Reads the u64 header length N from the first 8 bytes and checks it against the crate's cap. */
export function headerLength(first8: Uint8Array, fileName?: string): number {
  if (first8.length < 8) fail(fileName, `file is only ${first8.length} bytes; a safetensors file starts with an 8-byte header length`);
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  // hi > 0 means N >= 4 GiB, far past the cap; avoid building an imprecise number from it.
  if (hi !== 0 || lo > MAX_HEADER_SIZE) {
    fail(fileName, `header length ${hi !== 0 ? '>= 4 GiB' : lo} exceeds the ${MAX_HEADER_SIZE}-byte limit (not a safetensors file, or corrupt)`);
  }
  if (lo === 0) fail(fileName, 'header length is 0 (no JSON header)');
  return lo;
}

function checkDims(v: unknown, fileName: string | undefined, name: string): number[] {
  if (!Array.isArray(v)) fail(fileName, `tensor '${nm(name)}': shape must be an array of non-negative integers, got ${quoteValue(v)}`);
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(fileName, `tensor '${nm(name)}': shape ${quoteValue(v)} has an invalid dimension ${quoteValue(d)} (must be a non-negative integer)`);
    }
  }
  return v as number[];
}

function checkOffsets(v: unknown, fileName: string | undefined, name: string): [number, number] {
  const ok = Array.isArray(v) && v.length === 2 &&
    v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  if (!ok) fail(fileName, `tensor '${nm(name)}': data_offsets ${quoteValue(v)} must be [begin, end] with non-negative integers`);
  const [b, e] = v as [number, number];
  if (b > e) fail(fileName, `tensor '${nm(name)}': data_offsets [${b}, ${e}] have begin > end`);
  return [b, e];
}

function numElements(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Parses and validates the header. `bytes` may be only the first 8+N bytes (HTTP range reads); pass
 * `fileSize` to also check that the data section is exactly as long as the header says (otherwise only
 * internal consistency is checked).
 */
export function parseHeader(bytes: Uint8Array, fileName?: string, fileSize?: number): SafetensorsHeader {
  const n = headerLength(bytes, fileName);
  const dataStart = 8 + n;
  if (fileSize !== undefined && dataStart > fileSize) {
    fail(fileName, `header length ${n} runs past the end of the file (${fileSize} bytes); the file is truncated or not safetensors`);
  }
  if (bytes.length < dataStart) {
    fail(fileName, `header needs ${dataStart} bytes but only ${bytes.length} are available; the file is truncated or not safetensors`);
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    fail(fileName, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // A deeply nested header makes JSON.parse itself run out of stack (RangeError).
    fail(fileName, e instanceof RangeError ? 'header is not valid JSON (nested too deeply to read)' : `header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(fileName, 'header JSON is not an object');

  // Object.fromEntries at the end (not obj[k] = v) so a name like "__proto__" stays an ordinary key.
  const metaList: [string, string][] = [];
  const list: [string, HeaderEntry][] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(fileName, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(fileName, `__metadata__ value for '${nm(k)}' is not a string (got ${quoteValue(v)})`);
        metaList.push([k, v]);
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(fileName, `tensor '${nm(name)}': header entry is not an object (got ${quoteValue(raw)})`);
    const r = raw as Record<string, unknown>;
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in r)) fail(fileName, `tensor '${nm(name)}': header entry is missing '${key}'`);
    }
    if (!isDType(r.dtype)) {
      fail(fileName, `tensor '${nm(name)}': unsupported dtype ${quoteValue(r.dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const entry: HeaderEntry = {
      dtype: r.dtype,
      shape: checkDims(r.shape, fileName, name),
      data_offsets: checkOffsets(r.data_offsets, fileName, name),
    };
    const want = numElements(entry.shape) * DTYPE_SIZE[entry.dtype];
    if (!Number.isSafeInteger(want)) fail(fileName, `tensor '${nm(name)}': shape ${quoteValue(entry.shape)} is too large`);
    const got = entry.data_offsets[1] - entry.data_offsets[0];
    if (got !== want) {
      fail(fileName, `tensor '${nm(name)}': ${entry.dtype} ${quoteValue(entry.shape)} needs ${want} bytes but data_offsets [${entry.data_offsets.join(', ')}] span ${got}`);
    }
    list.push([name, entry]);
  }

  // Like the crate: sorted by offsets, the tensors must tile [0, end) with no gap and no overlap.
  const byHeaderOrder = list.slice();
  list.sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  if (fileSize !== undefined) {
    // Data past the end of the file first: a truncated download (or offsets pointing outside the file) is not a
    // "gap", whatever else the offsets say.
    const have = fileSize - dataStart;
    const end = list.reduce((m, [, e]) => Math.max(m, e.data_offsets[1]), 0);
    const outside = list.find(([, e]) => e.data_offsets[1] > have);
    if (outside) {
      const [name, e] = outside;
      fail(fileName,
        `tensor '${nm(name)}' lies outside the file: its data ends at byte ${dataStart + e.data_offsets[1]} but the file is ${fileSize} bytes. ` +
        `The file is truncated or corrupt (the header describes ${end} bytes of tensor data but only ${have} are present; tensor '${nm(name)}' onwards is cut off); download it again.`);
    }
  }
  let pos = 0;
  let prev = '';
  for (const [name, e] of list) {
    const [b] = e.data_offsets;
    if (b > pos) fail(fileName, `tensor '${nm(name)}': data starts at ${b} but the data before it ends at ${pos} (gap in the data section)`);
    if (b < pos) fail(fileName, `tensor '${nm(name)}': data at ${b} overlaps tensor '${nm(prev)}' (which ends at ${pos})`);
    pos = e.data_offsets[1];
    prev = name;
  }
  if (fileSize !== undefined) {
    const have = fileSize - dataStart;
    if (have > pos) fail(fileName, `data section has ${have - pos} unexpected trailing bytes after the last tensor (header describes ${pos})`);
  }
  return { tensors: Object.fromEntries(byHeaderOrder), metadata: Object.fromEntries(metaList), dataStart };
}

/**
 * Copies `bytes` into a fresh, offset-0 buffer so typed-array views on it are aligned. Not `.slice()`:
 * on a Node Buffer that returns a view into the (possibly pooled, larger) original.
 */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}

let f16Table: Uint32Array | null = null;

/** IEEE half -> float bits, exact (subnormals normalized, inf/nan kept, nan payload preserved). */
function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

export function f16ToF32(u16: Uint16Array): Float32Array {
  if (!f16Table) {
    // A 256 KiB table beats per-element branching on multi-GB f16 checkpoints.
    f16Table = new Uint32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = halfToFloatBits(i);
  }
  const out = new Float32Array(u16.length);
  const bits = new Uint32Array(out.buffer);
  const t = f16Table;
  for (let i = 0; i < u16.length; i++) bits[i] = t[u16[i]];
  return out;
}

export function bf16ToF32(u16: Uint16Array): Float32Array {
  // bf16 is the top half of an f32, so widening is exact.
  const out = new Float32Array(u16.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < u16.length; i++) bits[i] = u16[i] << 16;
  return out;
}

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new EngineError('BACKEND', 'safetensors I/O needs a little-endian host');
}

/** int64 -> int32, refusing values that do not fit (ids, masks and labels always do). */
function i64ToI32(bytes: Uint8Array, fileName: string | undefined, name: string): Int32Array {
  const words = new Int32Array(alignedCopy(bytes));
  const out = new Int32Array(words.length / 2);
  for (let i = 0; i < out.length; i++) {
    const lo = words[2 * i];
    const hi = words[2 * i + 1];
    if (hi !== (lo >> 31)) {
      fail(fileName, `tensor '${name}': I64 value at index ${i} does not fit in int32`);
    }
    out[i] = lo;
  }
  return out;
}

/**
 * Converts a chunk of raw little-endian elements of `dtype` to float32. Any whole number of elements
 * works, at any byte offset, so it can be fed piece by piece from a stream.
 */
export function convert(dtype: DType, bytes: Uint8Array): Float32Array {
  assertLittleEndian();
  const size = DTYPE_SIZE[dtype];
  if (bytes.length % size !== 0) {
    throw new EngineError('BAD_ARGUMENT', `convert: ${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  switch (dtype) {
    case 'F32': return new Float32Array(alignedCopy(bytes));
    case 'F16': return f16ToF32(new Uint16Array(alignedCopy(bytes)));
    case 'BF16': return bf16ToF32(new Uint16Array(alignedCopy(bytes)));
    case 'F64': return Float32Array.from(new Float64Array(alignedCopy(bytes)));
    case 'I64': {
      // Exact for |v| < 2^53; beyond that the float32 result is the nearest representable anyway.
      const w = new Int32Array(alignedCopy(bytes));
      const out = new Float32Array(w.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0);
      return out;
    }
    case 'I32': return Float32Array.from(new Int32Array(alignedCopy(bytes)));
    case 'I16': return Float32Array.from(new Int16Array(alignedCopy(bytes)));
    case 'I8': return Float32Array.from(new Int8Array(alignedCopy(bytes)));
    case 'U8':
    case 'BOOL': return Float32Array.from(bytes);
  }
}

/** Decodes one tensor's raw bytes into the type `readSafetensors` promises for its dtype. */
export function decodeTensor(
  dtype: DType, bytes: Uint8Array, fileName?: string, name = '?',
): Float32Array | Int32Array | Uint8Array {
  assertLittleEndian();
  switch (dtype) {
    case 'F64': case 'F32': case 'F16': case 'BF16': return convert(dtype, bytes);
    case 'I64': return i64ToI32(bytes, fileName, name);
    case 'I32': return new Int32Array(alignedCopy(bytes));
    case 'I16': return Int32Array.from(new Int16Array(alignedCopy(bytes)));
    case 'I8': return Int32Array.from(new Int8Array(alignedCopy(bytes)));
    case 'U8': case 'BOOL': return new Uint8Array(alignedCopy(bytes));
  }
}

/** Reads and validates a whole file. The returned Map is in data-offset (file) order; data is owned. */
export function readSafetensors(
  bytes: Uint8Array | ArrayBuffer, fileName?: string,
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const buf = toBytes(bytes);
  const header = parseHeader(buf, fileName, buf.length);
  const entries = Object.entries(header.tensors)
    .sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, e] of entries) {
    const raw = buf.subarray(header.dataStart + e.data_offsets[0], header.dataStart + e.data_offsets[1]);
    tensors.set(name, { dtype: e.dtype, shape: e.shape.slice(), data: decodeTensor(e.dtype, raw, fileName, name) });
  }
  return { tensors, metadata: header.metadata };
}

/** Byte-wise UTF-8 order == Unicode code point order (JS `<` compares UTF-16 units, which differs above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** Encodes one tensor's data as little-endian bytes of `dtype`. */
function encodeTensor(name: string, t: TensorToWrite, dtype: 'F32' | 'I64' | 'I32'): Uint8Array {
  const n = numElements(t.shape);
  if (t.data.length !== n) {
    throw new EngineError('BAD_ARGUMENT', `writeSafetensors: tensor '${name}' has ${t.data.length} values but shape ${quoteValue(t.shape)} needs ${n}`);
  }
  if (dtype !== 'F32' && t.data instanceof Float32Array && !t.data.every((v) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) {
    throw new EngineError('BAD_ARGUMENT', `writeSafetensors: tensor '${name}' has non-int32 values and cannot be written as ${dtype}`);
  }
  if (dtype === 'F32') {
    const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  }
  const i = t.data instanceof Int32Array ? t.data : Int32Array.from(t.data);
  if (dtype === 'I32') return new Uint8Array(i.buffer, i.byteOffset, i.byteLength);
  const words = new Int32Array(n * 2);
  for (let k = 0; k < n; k++) {
    words[2 * k] = i[k];
    words[2 * k + 1] = i[k] >> 31; // sign extension
  }
  return new Uint8Array(words.buffer);
}

/**
 * Serializes like the reference library. `metadata` defaults to {"format":"pt"} (what PyTorch-side tools
 * write and transformers/PEFT expect); pass null to omit `__metadata__` entirely. Metadata keys are
 * written in the object's own order (the reference uses a HashMap, so its order for >1 key is arbitrary).
 */
export function writeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> | null = { format: 'pt' },
): Uint8Array {
  assertLittleEndian();
  const items = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].map(([name, t]) => {
    if (name === '__metadata__') throw new EngineError('BAD_ARGUMENT', "writeSafetensors: '__metadata__' cannot be a tensor name");
    const dtype = t.dtype ?? 'F32';
    if (dtype !== 'F32' && dtype !== 'I64' && dtype !== 'I32') {
      throw new EngineError('BAD_ARGUMENT', `writeSafetensors: tensor '${name}' has unsupported dtype ${String(dtype)}`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new EngineError('BAD_ARGUMENT', `writeSafetensors: tensor '${name}' has an invalid shape ${quoteValue(t.shape)}`);
    }
    return { name, dtype, t };
  });
  items.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareCodePoints(a.name, b.name));

  const parts: string[] = [];
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new EngineError('BAD_ARGUMENT', `writeSafetensors: metadata value for '${k}' must be a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const { name, dtype, t } of items) {
    const blob = encodeTensor(name, t, dtype);
    // Same field order and compact form as serde_json; shape dims are plain integers.
    parts.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + blob.length}]}`);
    offset += blob.length;
    blobs.push(blob);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_SIZE) throw new EngineError('BAD_ARGUMENT', `writeSafetensors: header would be ${n} bytes, over the ${MAX_HEADER_SIZE}-byte limit`);

  const out = new Uint8Array(8 + n + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n, true);
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n); // space padding keeps the header valid JSON
  let pos = 8 + n;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

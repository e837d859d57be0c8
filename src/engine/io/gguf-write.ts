/**
 * A GGUF v3 writer, from the format's specification (ggml's docs/gguf.md): little-endian
 *   magic "GGUF" | version u32 = 3 | tensor_count u64 | metadata_kv_count u64
 *   metadata: key (u64 length + UTF-8) | value type u32 | value
 *   tensor infos: name | n_dims u32 | ne[n_dims] u64 (innermost dimension first) | ggml type u32 | offset u64
 *   padding to the alignment (general.alignment, default 32), then each tensor's data at its offset, each padded
 *   to the alignment.
 * A torch tensor of shape [a, b] is ne = [b, a] in GGUF: the same bytes, dimensions listed the other way round.
 */
import { encodeFloats } from './float-encode';

/** gguf_type of metadata values. */
export const GGUF_VALUE = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 } as const;
/** ggml_type of tensors this writer produces. */
export const GGML_TYPE = { F32: 0, F16: 1 } as const;
export type GgmlType = keyof typeof GGML_TYPE;

export const GGUF_DEFAULT_ALIGNMENT = 32;

export type GgufValue =
  | { type: 'string'; value: string }
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string[]'; value: string[] }
  | { type: 'u32[]'; value: number[] };

export interface GgufTensor {
  name: string;
  /** Torch shape (outermost first); written reversed as GGUF's ne. */
  shape: number[];
  type: GgmlType;
  data: Float32Array;
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.push(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function writeValue(b: Bytes, v: GgufValue): void {
  switch (v.type) {
    case 'string': b.u32(GGUF_VALUE.STRING); b.str(v.value); return;
    case 'u32': b.u32(GGUF_VALUE.UINT32); b.u32(v.value); return;
    case 'f32': b.u32(GGUF_VALUE.FLOAT32); b.f32(v.value); return;
    case 'bool': b.u32(GGUF_VALUE.BOOL); b.push(new Uint8Array([v.value ? 1 : 0])); return;
    case 'string[]':
      b.u32(GGUF_VALUE.ARRAY); b.u32(GGUF_VALUE.STRING); b.u64(v.value.length);
      for (const s of v.value) b.str(s);
      return;
    case 'u32[]':
      b.u32(GGUF_VALUE.ARRAY); b.u32(GGUF_VALUE.UINT32); b.u64(v.value.length);
      for (const x of v.value) b.u32(x);
      return;
  }
}

/** A whole GGUF file: metadata in the given order, then the tensors in the given order. */
export function writeGguf(metadata: [string, GgufValue][], tensors: GgufTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): Uint8Array {
  const b = new Bytes();
  b.push(new TextEncoder().encode('GGUF'));
  b.u32(3);
  b.u64(tensors.length);
  b.u64(metadata.length);
  for (const [k, v] of metadata) {
    b.str(k);
    writeValue(b, v);
  }
  const blobs = tensors.map((t) => encodeFloats(t.data, t.type));
  let offset = 0;
  tensors.forEach((t, i) => {
    b.str(t.name);
    b.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) b.u64(d);
    b.u32(GGML_TYPE[t.type]);
    b.u64(offset);
    offset += Math.ceil(blobs[i].length / alignment) * alignment;
  });
  b.pad(alignment);
  for (const blob of blobs) {
    b.push(blob);
    b.pad(alignment);
  }
  return b.concat();
}

/**
 * Variants of the fixture models for the Hub tests, built in memory: a 16-bit copy (F16, one BF16 tensor) and a
 * sharded copy with model.safetensors.index.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type LoadedTensor } from '../../src/engine/io/safetensors';

/** float32 -> IEEE half bits, round to nearest (ties away; fine for a fixture). */
export function f32ToF16Bits(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  let exp = ((u >>> 23) & 0xff) - 112;
  let mant = u & 0x7fffff;
  if (((u >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant = (mant | 0x800000) >> (1 - exp);
    return sign | ((mant + 0x1000) >> 13);
  }
  mant += 0x1000;
  if (mant & 0x800000) {
    mant = 0;
    exp++;
  }
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | (mant >> 13);
}

/** A safetensors file from raw little-endian tensor bytes in the given dtypes (the library writer is F32/int only). */
export function rawSafetensors(entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const e of entries) {
    out.set(e.bytes, p);
    p += e.bytes.length;
  }
  return out;
}

function tensorsOf(dir: string): Map<string, LoadedTensor> {
  return readSafetensors(readFileSync(join(dir, 'model.safetensors'))).tensors;
}

/** Every F32 tensor as F16, except `bf16` ones as BF16 (the top half of the float32 bits). */
export function halfPrecisionCopy(dir: string, bf16: string[] = []): Record<string, Uint8Array> {
  const entries = [...tensorsOf(dir)].map(([name, t]) => {
    const f = t.data as Float32Array;
    const h = new Uint16Array(f.length);
    const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
    const isBf = bf16.includes(name);
    for (let i = 0; i < f.length; i++) h[i] = isBf ? bits[i] >>> 16 : f32ToF16Bits(f[i]);
    return { name, dtype: isBf ? 'BF16' : 'F16', shape: t.shape, bytes: new Uint8Array(h.buffer) };
  });
  return { 'config.json': readFileSync(join(dir, 'config.json')), 'model.safetensors': rawSafetensors(entries) };
}

/** The model split into `n` shards plus an index, as save_pretrained(max_shard_size=...) writes them. */
export function shardedCopy(dir: string, n = 2): Record<string, Uint8Array> {
  const all = [...tensorsOf(dir)];
  const files: Record<string, Uint8Array> = { 'config.json': readFileSync(join(dir, 'config.json')) };
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < n; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const part = all.filter((_, i) => i % n === s);
    files[name] = writeSafetensors(new Map(part.map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    for (const [k, t] of part) {
      weightMap[k] = name;
      total += (t.data as Float32Array).byteLength;
    }
  }
  files['model.safetensors.index.json'] = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
  return files;
}

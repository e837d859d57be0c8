/**
 * float32 -> float16 / bfloat16 as PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)` round them: to the
 * nearest representable value, ties to even; too large for f16 becomes ±Infinity; NaN stays NaN. Used to write
 * merged models and GGUF tensors in half precision.
 */
import { EngineError } from '../errors';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a float32 value, rounded to nearest even. */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf, or a quiet NaN
  const e = exp - 127 + 15; // the f16 exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the full 24-bit mantissa down, rounding to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the correctly rounded result (up to Inf).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** bfloat16 bits of a float32 value: the top half, rounded to nearest even (c10's round_to_nearest_even). */
export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if (Number.isNaN(v)) return 0x7fc0 | ((x >>> 16) & 0x8000);
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export type FloatDType = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each writable float type. */
export const FLOAT_SIZE: Readonly<Record<FloatDType, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Little-endian bytes of `data` in `dtype` (F32 shares the input's buffer). */
export function encodeFloats(data: Float32Array, dtype: FloatDType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]);
  return new Uint8Array(out.buffer);
}

/** --dtype / a form's value (f32, float16, bf16, ...) -> the safetensors dtype. */
export function parseFloatDType(s: string): FloatDType {
  const k = s.trim().toLowerCase();
  if (k === 'f32' || k === 'float32' || k === 'fp32') return 'F32';
  if (k === 'f16' || k === 'float16' || k === 'fp16' || k === 'half') return 'F16';
  if (k === 'bf16' || k === 'bfloat16') return 'BF16';
  throw new EngineError('BAD_ARGUMENT', `dtype must be f32, f16 or bf16, got "${s}"`);
}

/** transformers' torch_dtype name of a float type (config.json). */
export function torchDtypeName(d: FloatDType): string {
  return d === 'F32' ? 'float32' : d === 'F16' ? 'float16' : 'bfloat16';
}

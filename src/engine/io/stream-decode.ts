/**
 * Decodes a safetensors file as its bytes arrive: the header is parsed (and validated against the file size)
 * as soon as it is complete, then each tensor's elements are converted to float32 (F16/BF16/F64) or copied
 * (F32) straight into the tensor's own array. Only the current network chunk and at most one partial element
 * are held raw, never the raw file next to its float32 copy. The result equals readSafetensors on the whole file.
 */
import { EngineError } from '../errors';
import {
  DTYPE_SIZE, convert, decodeTensor, headerLength, parseHeader,
  type HeaderEntry, type LoadedTensor, type SafetensorsHeader,
} from './safetensors';

const FLOAT = new Set(['F32', 'F16', 'BF16', 'F64']);

interface Current {
  name: string;
  entry: HeaderEntry;
  bytes: number;
  /** Float dtypes: converted output; others: raw bytes, decoded when complete (ids/masks are small). */
  out: Float32Array | Uint8Array;
  filled: number;
  carry: Uint8Array;
  carryLen: number;
}

export class SafetensorsStreamDecoder {
  /** Bytes pushed so far (= the file offset the next byte belongs to). */
  consumed = 0;
  header: SafetensorsHeader | null = null;
  readonly tensors = new Map<string, LoadedTensor>();
  private head = new Uint8Array(8);
  private headFill = 0;
  private order: [string, HeaderEntry][] = [];
  private idx = 0;
  private cur: Current | null = null;

  constructor(readonly fileName: string, readonly fileSize: number) {}

  push(chunk: Uint8Array): void {
    let p = 0;
    if (this.consumed + chunk.length > this.fileSize) {
      throw new EngineError('BAD_SAFETENSORS', `${this.fileName}: received more than the expected ${this.fileSize} bytes.`);
    }
    while (p < chunk.length) {
      if (!this.header) {
        p += this.takeHeader(chunk.subarray(p));
        continue;
      }
      const c = this.cur;
      if (!c) throw new EngineError('BAD_SAFETENSORS', `${this.fileName}: unexpected bytes after the last tensor.`);
      const take = Math.min(c.bytes - c.filled, chunk.length - p);
      this.feed(c, chunk.subarray(p, p + take));
      p += take;
      if (c.filled === c.bytes) this.finishTensor();
    }
    this.consumed += chunk.length;
  }

  /** Checks that the whole file arrived and returns the tensors in file order. */
  finish(): Map<string, LoadedTensor> {
    if (this.consumed !== this.fileSize || !this.header || this.cur) {
      throw new EngineError('BAD_SAFETENSORS', `${this.fileName}: only ${this.consumed} of ${this.fileSize} bytes arrived; the file is incomplete.`);
    }
    return this.tensors;
  }

  private takeHeader(bytes: Uint8Array): number {
    const want = this.head.length - this.headFill;
    const take = Math.min(want, bytes.length);
    this.head.set(bytes.subarray(0, take), this.headFill);
    this.headFill += take;
    if (this.headFill < this.head.length) return take;
    if (this.head.length === 8) {
      const n = headerLength(this.head, this.fileName);
      if (8 + n > this.fileSize) {
        throw new EngineError('BAD_SAFETENSORS', `${this.fileName}: header length ${n} runs past the end of the file (${this.fileSize} bytes).`);
      }
      const full = new Uint8Array(8 + n);
      full.set(this.head);
      this.head = full;
      return take;
    }
    this.header = parseHeader(this.head, this.fileName, this.fileSize);
    this.head = new Uint8Array(0);
    this.order = Object.entries(this.header.tensors)
      .sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
    this.startTensor();
    return take;
  }

  private startTensor(): void {
    this.cur = null;
    while (this.idx < this.order.length) {
      const [name, entry] = this.order[this.idx];
      const bytes = entry.data_offsets[1] - entry.data_offsets[0];
      const size = DTYPE_SIZE[entry.dtype];
      const out = FLOAT.has(entry.dtype) ? new Float32Array(bytes / size) : new Uint8Array(bytes);
      this.cur = { name, entry, bytes, out, filled: 0, carry: new Uint8Array(size), carryLen: 0 };
      if (bytes > 0) return;
      this.finishTensor(); // empty tensor: nothing to wait for
      return;
    }
  }

  private feed(c: Current, bytes: Uint8Array): void {
    const dtype = c.entry.dtype;
    if (!(c.out instanceof Float32Array)) {
      c.out.set(bytes, c.filled);
    } else if (dtype === 'F32') {
      // Same layout: copy bytes straight in, even a split element.
      new Uint8Array(c.out.buffer).set(bytes, c.filled);
    } else {
      const size = DTYPE_SIZE[dtype];
      let b = bytes;
      if (c.carryLen) {
        const t = Math.min(size - c.carryLen, b.length);
        c.carry.set(b.subarray(0, t), c.carryLen);
        c.carryLen += t;
        b = b.subarray(t);
        if (c.carryLen === size) {
          c.out.set(convert(dtype, c.carry), (c.filled + t) / size - 1);
          c.carryLen = 0;
        }
      }
      const whole = b.length - (b.length % size);
      if (whole) c.out.set(convert(dtype, b.subarray(0, whole)), (c.filled + bytes.length - b.length) / size);
      if (whole < b.length) {
        c.carry.set(b.subarray(whole));
        c.carryLen = b.length - whole;
      }
    }
    c.filled += bytes.length;
  }

  private finishTensor(): void {
    const c = this.cur!;
    const data = c.out instanceof Float32Array ? c.out : decodeTensor(c.entry.dtype, c.out, this.fileName, c.name);
    this.tensors.set(c.name, { dtype: c.entry.dtype, shape: c.entry.shape.slice(), data });
    this.idx++;
    this.startTensor();
  }
}

/**
 * The tfjs wasm backend's heap: its size (the figure that matters for "does it fit": WebAssembly memory
 * grows and never shrinks, and tops out at 4 GiB) and a guard that turns a failed allocation into an
 * OUT_OF_MEMORY error.
 *
 * Without the guard a failed malloc returns 0 and tfjs writes the tensor at address 0, overwriting the
 * module's own memory; the next kernel then fails with "memory access out of bounds" or aborts, and the
 * backend is lost. With it the kernel that asked for memory throws, tfjs unwinds its scopes, and everything
 * allocated before stays usable (the last good adapter can still be exported).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';

/** WebAssembly's limit for the heap tfjs-wasm is built with. */
export const WASM_HEAP_LIMIT = 4 * 2 ** 30;

interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  /** The module's exports; emscripten's _malloc / _free stubs replace themselves with these on first call. */
  asm?: { malloc?(n: number): number; free?(p: number): void };
  __peftStudioGuard?: boolean;
}

function wasmModule(): WasmModule | null {
  if (tf.getBackend() !== 'wasm') return null;
  return (tf.backend() as unknown as { wasm: WasmModule }).wasm;
}

/** Current (= peak) size of the wasm heap in bytes, or null on other backends. */
export function wasmHeapBytes(): number | null {
  const m = wasmModule();
  return m ? m.HEAPU8.buffer.byteLength : null;
}

export function outOfMemory(bytes: number): EngineError {
  const heap = wasmHeapBytes();
  return new EngineError(
    'OUT_OF_MEMORY',
    `Out of memory: the wasm backend could not allocate ${(bytes / 2 ** 20).toFixed(0)} MiB` +
      (heap ? ` (its heap is at ${(heap / 2 ** 30).toFixed(2)} of 4 GiB)` : '') +
      '. Lower the batch size or sequence length, turn on gradient checkpointing, or pick a smaller model.',
  );
}

/**
 * Bytes of tensor buffers the JavaScript side allocated and has not freed, and their peak since the last
 * reset. Unlike tf.memory().numBytes, which counts every tensor handle (a reshape or a clone counts its
 * buffer again), this counts each buffer once; XNNPACK's own allocations are not in it (the heap size is).
 */
export const tensorHeap = { live: 0, peak: 0, resetPeak: () => (tensorHeap.peak = tensorHeap.live) };
const sizes = new Map<number, number>();
let limit = Infinity;

/**
 * Makes tensor allocations fail past `bytes` of live tensor memory (null: no limit), as on a device with less
 * memory: how the studio's out-of-memory handling is exercised without allocating 4 GB.
 */
export function setWasmTensorLimit(bytes: number | null): void {
  limit = bytes ?? Infinity;
}

/** Makes every tfjs-wasm allocation throw OUT_OF_MEMORY instead of returning address 0 (once per module). */
export function guardWasmAllocations(): void {
  const m = wasmModule();
  if (!m || m.__peftStudioGuard) return;
  const malloc = m.asm?.malloc ?? m._malloc.bind(m);
  const free = m.asm?.free ?? m._free.bind(m);
  m._malloc = (n: number) => {
    if (tensorHeap.live + n > limit) throw outOfMemory(n);
    // emscripten returns addresses above 2 GiB as negative int32s; tfjs-wasm uses them unsigned (>>> 0).
    const p = malloc(n) >>> 0;
    if (p === 0 && n > 0) throw outOfMemory(n);
    sizes.set(p, n);
    tensorHeap.live += n;
    if (tensorHeap.live > tensorHeap.peak) tensorHeap.peak = tensorHeap.live;
    return p;
  };
  m._free = (ptr: number) => {
    const p = ptr >>> 0;
    const n = sizes.get(p);
    if (n !== undefined) {
      sizes.delete(p);
      tensorHeap.live -= n;
    }
    free(p);
  };
  m.__peftStudioGuard = true;
}

/**
 * Whether `bytes` more can be allocated right now (tries, then frees). For memory that tfjs-wasm's C++ side
 * allocates itself (XNNPACK's packed weights), whose failure would otherwise go unnoticed.
 */
export function ensureWasmHeadroom(bytes: number): void {
  const m = wasmModule();
  if (!m || bytes <= 0) return;
  const peak = tensorHeap.peak;
  const p = m._malloc(bytes);
  m._free(p);
  tensorHeap.peak = peak; // a probe, not a tensor
}

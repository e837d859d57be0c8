/**
 * The wasm out-of-memory guard (src/engine/wasm-heap.ts): an allocation that cannot fit makes tfjs throw an
 * EngineError OUT_OF_MEMORY (instead of writing at address 0 and losing the backend), tidy scopes unwind, and
 * the backend keeps computing correctly afterwards. In a file of its own: it grows this fork's wasm heap to
 * its 4 GiB limit, which never shrinks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { tensorHeap, WASM_HEAP_LIMIT, wasmHeapBytes } from '../src/engine/wasm-heap';

const CHUNK = 64 * 2 ** 20; // float32 elements: 256 MiB per tensor

/** Allocates 256 MiB tensors until an allocation fails; returns them and the error. */
function fillHeap(): { held: tf.Tensor[]; error: unknown } {
  const held: tf.Tensor[] = [];
  try {
    for (let i = 0; i < 32; i++) held.push(tf.fill([CHUNK], i + 1));
  } catch (e) {
    return { held, error: e };
  }
  return { held, error: null };
}

describe('wasm out-of-memory guard', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });

  it('a tensor that cannot fit throws EngineError OUT_OF_MEMORY; afterwards the backend computes correctly', () => {
    const start = tf.memory().numTensors;
    const keep = tf.tensor2d([[1, 2], [3, 4]]); // allocated before: must survive
    const { held, error } = fillHeap();
    try {
      expect(error, 'no allocation failed below 8 GiB').not.toBeNull();
      expect(error).toBeInstanceOf(EngineError);
      expect((error as EngineError).code).toBe('OUT_OF_MEMORY');
      expect((error as EngineError).message).toMatch(/could not allocate 256 MiB/);
      // It failed near the limit, not at the first try.
      expect(held.length).toBeGreaterThanOrEqual(8);
      expect(held.length * CHUNK * 4).toBeLessThanOrEqual(WASM_HEAP_LIMIT);
      expect(wasmHeapBytes()).toBeGreaterThan(3 * 2 ** 30);
      // The tensors allocated before the failure are intact (first and last element of a few).
      for (const i of [0, held.length - 1]) {
        const v = held[i].dataSync();
        expect([v[0], v[CHUNK - 1]]).toEqual([i + 1, i + 1]);
      }
    } finally {
      tf.dispose(held);
    }
    expect(tf.memory().numTensors).toBe(start + 1);
    // The backend still works: closed-form products and reductions, and a large allocation fits again.
    const y = tf.tidy(() => Array.from(tf.matMul(keep, tf.tensor2d([[5], [6]])).dataSync()));
    expect(y).toEqual([17, 39]);
    const s = tf.tidy(() => tf.sum(tf.range(0, 1000)).dataSync()[0]);
    expect(s).toBe(499500);
    const big = tf.fill([CHUNK], 2);
    expect(tf.tidy(() => tf.max(big).dataSync()[0])).toBe(2);
    big.dispose();
    keep.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('an OUT_OF_MEMORY inside tf.tidy unwinds the scope: its tensors are freed', () => {
    const start = tf.memory().numTensors;
    let error: unknown = null;
    try {
      tf.tidy(() => {
        for (let i = 0; i < 32; i++) tf.fill([CHUNK], 1);
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('OUT_OF_MEMORY');
    expect(tf.memory().numTensors).toBe(start);
    const x = tf.tensor1d([1, 2, 3]);
    expect(Array.from(tf.tidy(() => tf.mul(x, x).dataSync()))).toEqual([1, 4, 9]);
    x.dispose();
  });

  // emscripten's _malloc returns addresses above 2 GiB as negative int32s; the accounting must key them as tfjs
  // does (unsigned), or tensorHeap.live drifts up after every big run.
  it('tensorHeap.live returns to its starting value after tensors above 2 GiB are freed', () => {
    const live0 = tensorHeap.live;
    const { held } = fillHeap();
    expect(held.length * CHUNK * 4).toBeGreaterThan(2 * 2 ** 30);
    tf.dispose(held);
    expect(tensorHeap.live).toBe(live0);
  });
});

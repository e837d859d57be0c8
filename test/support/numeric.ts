/**
 * Helpers for the engine-op tests (ops, autodiff, checkpointing, memory): seeded inputs that do not depend on
 * the backend's random generator, and comparisons with readable failure messages.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/** mulberry32: a tiny seeded generator, independent of tfjs's and of the engine's Rng. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard-normal values (Box-Muller) times std, from a seed. */
export function normals(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** A float32 tensor of N(0, std^2) values from a seed (the same values on every backend). */
export function randn(shape: number[], seed: number, std = 1): tf.Tensor {
  return tf.tensor(normals(sizeOf(shape), seed, std), shape, 'float32');
}

/** Integers in [0, n) from a seed. */
export function ints(count: number, n: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: count }, () => Math.floor(r() * n));
}

/** A copy of a tensor's values (safe to keep after the tensor is disposed). */
export function values(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length, 'lengths differ').toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** max |actual - expected| <= tol. */
export function expectClose(actual: tf.Tensor | ArrayLike<number>, expected: tf.Tensor | ArrayLike<number>, tol: number, label = ''): void {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const e = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (actual instanceof tf.Tensor && expected instanceof tf.Tensor) expect(actual.shape, `${label} shape`).toEqual(expected.shape);
  expect(maxDiff(a, e), label).toBeLessThanOrEqual(tol);
}

/** max |actual - expected| / max |expected| <= tol (the relative error of a gradient tensor). */
export function expectRel(actual: tf.Tensor | ArrayLike<number>, expected: tf.Tensor | ArrayLike<number>, tol: number, label = ''): void {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const e = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (actual instanceof tf.Tensor && expected instanceof tf.Tensor) expect(actual.shape, `${label} shape`).toEqual(expected.shape);
  const ref = maxAbs(e);
  expect(ref, `${label}: reference gradient is all zeros`).toBeGreaterThan(0);
  expect(maxDiff(a, e) / ref, label).toBeLessThanOrEqual(tol);
}

/** Whether ops/autodiff's shape-only tape patch is installed on the tfjs engine. */
export function shapeOnlyPatched(): boolean {
  return !!(tf.engine() as unknown as { __peftStudioShapeOnly?: boolean }).__peftStudioShapeOnly;
}

/** The tfjs engine's tape state (what a gradient computation must leave as it found). */
export function tapeState(): { activeTape: unknown; gradientDepth: number } {
  const s = (tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number } }).state;
  return { activeTape: s.activeTape, gradientDepth: s.gradientDepth };
}

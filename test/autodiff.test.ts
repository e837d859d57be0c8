/**
 * src/engine/ops/autodiff.ts: `gradients()` (tape-frugal reverse mode) and `checkpoint()` (recompute in the
 * backward pass) against tfjs's own tf.grads, and tfjs's own gradients after the shape-only tape patch.
 *
 * References are computed FIRST, in the top-level beforeAll, with tf.grads on an engine that does not have the
 * shape-only patch yet (the patch is installed by the first call of ops/autodiff's gradients): they come from
 * stock tfjs autodiff, for both backends.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { checkpoint, gradients } from '../src/engine/ops/autodiff';
import * as ops from '../src/engine/ops/fused';
import { BACKENDS } from './helpers';
import { expectClose, expectRel, normals, shapeOnlyPatched, sizeOf, tapeState, values } from './support/numeric';

type Backend = (typeof BACKENDS)[number];
type F = (...xs: tf.Tensor[]) => tf.Tensor;

interface Case {
  name: string;
  /** Input shapes (float32, seeded values). */
  shapes: number[][];
  f: F;
  /** Indices of the inputs y depends on (default: all); the others must get a null gradient. */
  used?: number[];
  /** Upstream gradient: random of y's shape (default) or none (ones). */
  noDy?: boolean;
}

const CASES: Case[] = [
  {
    name: 'broadcasting add / sub ([3,1] + [1,4])',
    shapes: [[3, 1], [1, 4], [3, 4]],
    f: (a, b, c) => tf.mul(tf.add(a, b), tf.sub(c, b)),
  },
  {
    name: 'bias add [2,3,5] + [5], squared',
    shapes: [[2, 3, 5], [5]],
    f: (x, bias) => tf.square(tf.add(x, bias)),
  },
  {
    name: 'reshapes and slices',
    shapes: [[2, 6]],
    f: (x) => {
      const s = tf.slice(tf.reshape(x, [3, 4]), [1, 1], [2, 3]);
      return tf.add(tf.mul(s, s), tf.slice(x, [0, 2], [2, 3]));
    },
  },
  {
    name: 'concat then matmul, and concat of one tensor with itself',
    shapes: [[2, 3], [2, 2], [5, 3]],
    f: (x, y, w) => tf.add(tf.matMul(tf.concat([x, tf.exp(y)], 1), w), tf.slice(tf.concat([x, x], 0), [1, 0], [2, 3])),
  },
  {
    name: 'sums and means with keepDims and broadcasting',
    shapes: [[3, 4]],
    f: (x) => tf.add(tf.add(tf.sum(tf.mul(x, x), 1, true), tf.mean(x, 0)), tf.mul(tf.mean(x), tf.sum(x))),
  },
  {
    name: 'matmul chain with an input used twice',
    shapes: [[4, 3], [3, 3]],
    f: (x, w) => tf.add(tf.matMul(tf.matMul(x, w), x, false, true), tf.tanh(tf.matMul(x, x, false, true))),
  },
  {
    name: 'softmax / log-softmax / transpose',
    shapes: [[2, 3, 5]],
    f: (x) => tf.mul(tf.softmax(x, -1), tf.transpose(tf.logSoftmax(tf.transpose(x, [0, 2, 1]), -1), [0, 2, 1])),
  },
  {
    name: 'an unused input',
    shapes: [[3], [3]],
    f: (x) => tf.mul(x, tf.sigmoid(x)),
    used: [0],
  },
  {
    name: 'scalar output, default dy',
    shapes: [[5, 2]],
    f: (x) => tf.sum(tf.square(tf.sub(x, tf.mean(x, 0, true)))),
    noDy: true,
  },
];

const inputsOf = (c: Case, salt = 0) => c.shapes.map((s, i) => tf.tensor(normals(sizeOf(s), 100 * CASES.indexOf(c) + i + salt), s));
const dyOf = (c: Case, shape: number[]) => (c.noDy ? undefined : tf.tensor(normals(sizeOf(shape), 7000 + CASES.indexOf(c)), shape));

interface Ref {
  value: Float32Array;
  shape: number[];
  /** null where y does not depend on that input. */
  grads: (Float32Array | null)[];
}

/** Stock tf.grads for the inputs y depends on. */
function tfRef(c: Case): Ref {
  let ref!: Ref;
  tf.tidy(() => {
    const xs = inputsOf(c);
    const y = c.f(...xs);
    const dy = dyOf(c, y.shape);
    const used = c.used ?? xs.map((_, i) => i);
    const g = tf.grads((...u: tf.Tensor[]) => c.f(...xs.map((x, i) => (used.includes(i) ? u[used.indexOf(i)] : x))))(used.map((i) => xs[i]), dy);
    ref = { value: values(y), shape: y.shape, grads: xs.map((_, i) => (used.includes(i) ? values(g[used.indexOf(i)]) : null)) };
  });
  return ref;
}

// ---------------------------------------------------------------------------------------------------------
// checkpoint() cases: fn(x, consts) reading trainable variables, checkpointed vs plain.

interface CkptSetup {
  x: tf.Tensor;
  consts: tf.Tensor[];
  vars: tf.Variable[];
  w0: tf.Variable;
  dispose(): void;
}

const C = 8;
function ckptSetup(): CkptSetup {
  const x = tf.tensor(normals(2 * 5 * C, 1), [2, 5, C]);
  const mask = tf.tensor(Float32Array.from({ length: 10 }, (_, i) => (i % 4 === 3 ? 0 : 1)), [2, 5, 1]);
  const own = (t: tf.Tensor) => {
    const v = tf.variable(t, true);
    t.dispose();
    return v;
  };
  const w1 = own(tf.tensor(normals(C * C, 2, 0.4), [C, C]));
  const w2 = own(tf.tensor(normals(C, 3, 0.5), [C]));
  const w0 = own(tf.tensor(normals(C, 4, 0.5), [C]));
  return { x, consts: [mask], vars: [w1, w2], w0, dispose: () => tf.dispose([x, mask, w1, w2, w0]) };
}

/** A residual block: x + mask * dropout(gelu(x W1)) + w2, the LayerNorm-free shape of a transformer MLP. */
function blockFn(vars: tf.Variable[], p: number): (x: tf.Tensor, consts: tf.Tensor[]) => tf.Tensor {
  const [w1, w2] = vars;
  return (x, [mask]) => {
    const [B, S] = x.shape;
    let h = tf.matMul(x.reshape([-1, C]), w1).reshape([B!, S!, C]);
    h = ops.geluTanh(h);
    if (p > 0) h = ops.dropout(h, p, 1234);
    return tf.add(x, tf.add(tf.mul(h, mask), w2));
  };
}

/** Two stacked blocks after an input scale by w0, as layers follow an embedding; scalar loss. */
function ckptLoss(s: CkptSetup, p: number, useCheckpoint: boolean): (x: tf.Tensor) => tf.Tensor {
  const fn = blockFn(s.vars, p);
  const run = (x: tf.Tensor) => (useCheckpoint ? checkpoint(fn, x, s.consts, s.vars) : fn(x, s.consts));
  return (x) => tf.sum(tf.square(run(run(tf.mul(x, s.w0)))));
}

interface CkptRef {
  value: number;
  grads: Float32Array[]; // x, w1, w2, w0
}

function ckptRef(p: number): CkptRef {
  const s = ckptSetup();
  const f = ckptLoss(s, p, false);
  const value = tf.tidy(() => f(s.x).dataSync()[0]);
  const g = tf.grads((x: tf.Tensor) => f(x))([s.x]);
  const gv = tf.variableGrads(() => f(s.x) as tf.Scalar, [...s.vars, s.w0]);
  const out = { value, grads: [values(g[0]), ...[...s.vars, s.w0].map((v) => values(gv.grads[v.name]))] };
  tf.dispose([g, gv.value, Object.values(gv.grads)]);
  s.dispose();
  return out;
}

/** f(x) = 2 * sum(exp(x) * x) through a customGrad whose backward calls gradients() (as checkpoint's does). */
const innerF = (x: tf.Tensor) => tf.sum(tf.mul(tf.exp(x), x));
const nested = tf.customGrad((...args: unknown[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: innerF(x),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const r = gradients(() => innerF(saved[0]), [saved[0]], dy as tf.Tensor);
      r.value.dispose();
      return [r.grads[0]!];
    },
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;
const nestedOuter = (x: tf.Tensor) => tf.mul(nested(tf.mul(x, 1.5)), 2);
const plainOuter = (x: tf.Tensor) => tf.mul(innerF(tf.mul(x, 1.5)), 2);
const nestedInput = () => tf.tensor(normals(12, 55, 0.5), [3, 4]);

// ---------------------------------------------------------------------------------------------------------

const REF = new Map<string, Ref>();
const CKPT_REF = new Map<string, CkptRef>();
const NESTED_REF = new Map<Backend, Float32Array>();

beforeAll(async () => {
  for (const b of BACKENDS) {
    await useNodeBackend(b);
    expect(shapeOnlyPatched(), 'the references must come from unpatched tfjs').toBe(false);
    for (const c of CASES) REF.set(`${b}:${c.name}`, tfRef(c));
    for (const p of [0, 0.3]) CKPT_REF.set(`${b}:${p}`, ckptRef(p));
    NESTED_REF.set(b, tf.tidy(() => values(tf.grads(plainOuter)([nestedInput()])[0])));
  }
  expect(shapeOnlyPatched()).toBe(false);
});

describe.each(BACKENDS)('gradients() on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s: value and grads equal tf.grads, nothing leaks', (_n, c) => {
    const ref = REF.get(`${backend}:${c.name}`)!;
    const start = tf.memory().numTensors;
    const xs = inputsOf(c);
    const dy = dyOf(c, ref.shape);
    const dyBefore = dy ? values(dy) : null;
    const { value, grads } = gradients(() => c.f(...xs), xs, dy);
    expect(shapeOnlyPatched()).toBe(true);
    expect(value.shape).toEqual(ref.shape);
    expectClose(value, ref.value, 1e-6, 'value');
    expect(grads.length).toBe(xs.length);
    ref.grads.forEach((g, i) => {
      if (g === null) expect(grads[i], `grad ${i}`).toBeNull();
      else {
        expect(grads[i]!.shape).toEqual(xs[i].shape);
        expectRel(grads[i]!, g, 1e-5, `grad ${i}`);
      }
    });
    // The caller's dy is neither disposed nor changed.
    if (dy) {
      expect(dy.isDisposed).toBe(false);
      expect(values(dy)).toEqual(dyBefore);
    }
    tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g !== null), ...xs, ...(dy ? [dy] : [])]);
    expect(tf.memory().numTensors).toBe(start);
    expect(tapeState().gradientDepth).toBe(0);
  });

  it('tfjs\'s own tf.grads still works with the shape-only patch installed (Add [3,1]+[1,4], Sum, Mean, Slice, Concat)', () => {
    expect(shapeOnlyPatched()).toBe(true);
    const names = CASES.slice(0, 5).map((c) => c.name);
    for (const c of CASES.filter((k) => names.includes(k.name))) {
      const ref = REF.get(`${backend}:${c.name}`)!;
      const start = tf.memory().numTensors;
      const xs = inputsOf(c);
      const dy = dyOf(c, ref.shape);
      const g = tf.grads(c.f)(xs, dy);
      g.forEach((gi, i) => expectRel(gi, ref.grads[i]!, 1e-5, `${c.name}: grad ${i}`));
      tf.dispose([...g, ...xs, ...(dy ? [dy] : [])]);
      expect(tf.memory().numTensors, c.name).toBe(start);
    }
  });

  it('closed form: d(a + b)/da and /db for [3,1] + [1,4] sum the broadcast gradient; d mean(x, 0) = dy / 3', () => {
    const a = tf.tensor2d([[1], [2], [3]]);
    const b = tf.tensor2d([[10, 20, 30, 40]]);
    const x = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
    const dyv = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const dy = tf.tensor2d(dyv, [3, 4]);
    const dy4 = tf.tensor1d([3, 6, 9, 12]);
    for (const run of ['gradients', 'tf.grads'] as const) {
      const add = run === 'gradients' ? gradients(() => tf.add(a, b), [a, b], dy) : { value: null, grads: tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.add(p, q))([a, b], dy) };
      expect(Array.from(add.grads[0]!.dataSync()), run).toEqual([10, 26, 42]);
      expect(Array.from(add.grads[1]!.dataSync()), run).toEqual([15, 18, 21, 24]);
      const mean = run === 'gradients' ? gradients(() => tf.mean(x, 0), [x], dy4) : { value: null, grads: tf.grads((p: tf.Tensor) => tf.mean(p, 0))([x], dy4) };
      expectClose(mean.grads[0]!.dataSync(), [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4], 1e-6, run);
      const sl = run === 'gradients'
        ? gradients(() => tf.slice(x, [1, 1], [2, 2]), [x], tf.tensor2d([[1, 2], [3, 4]]))
        : { value: null, grads: tf.grads((p: tf.Tensor) => tf.slice(p, [1, 1], [2, 2]))([x], tf.tensor2d([[1, 2], [3, 4]])) };
      expect(Array.from(sl.grads[0]!.dataSync()), run).toEqual([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0]);
      tf.dispose([add.value, ...add.grads, mean.value, ...mean.grads, sl.value, ...sl.grads].filter((t): t is tf.Tensor => !!t));
    }
    tf.dispose([a, b, x, dy, dy4]);
  });

  // A gradient function may hand dy through unchanged as an input's gradient; when that input then receives a
  // second contribution, the accumulation must not dispose the caller's dy.
  it('a caller-provided dy passed straight through by a gradient function is not disposed', () => {
    // pass(a, b) = a + b whose gradient hands dy to `a` unchanged; `a` also reaches y through b = 2a, so its
    // gradient is accumulated after the pass-through (dL/da = dy + 2 dy).
    const pass = tf.customGrad((...args: unknown[]) => ({
      value: tf.add(args[0] as tf.Tensor, args[1] as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor, tf.mul(dy as tf.Tensor, 1)],
    })) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    const start = tf.memory().numTensors;
    const a = tf.tensor1d([1, 2, 3]);
    const dy = tf.tensor1d([1, 10, 100]);
    const { value, grads } = gradients(() => pass(a, tf.mul(a, 2)), [a], dy);
    expect(Array.from(grads[0]!.dataSync())).toEqual([3, 30, 300]);
    expect(dy.isDisposed, 'the caller\'s dy was disposed by gradients()').toBe(false);
    expect(Array.from(dy.dataSync())).toEqual([1, 10, 100]);
    tf.dispose([value, grads[0]!, a, dy]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('gradients() nested in a tf.customGrad gradFunc: tf.grads and gradients() through it equal the plain function, and the engine stays usable', () => {
    const want = NESTED_REF.get(backend)!;
    const start = tf.memory().numTensors;
    const x = nestedInput();
    const [g1] = tf.grads(nestedOuter)([x]);
    expectRel(g1, want, 1e-5, 'tf.grads through the nested op');
    const r = gradients(() => nestedOuter(x), [x]);
    expectRel(r.grads[0]!, want, 1e-5, 'gradients() through the nested op');
    tf.dispose([g1, r.value, r.grads[0]!]);
    expect(tapeState().gradientDepth).toBe(0);
    // Usable afterwards: a new tf.grads on plain ops is right, and ops outside any gradient are not taped.
    const [g2] = tf.grads((t: tf.Tensor) => tf.sum(tf.square(t)))([x]);
    expectClose(g2, tf.tidy(() => values(tf.mul(x, 2))), 1e-6, 'after');
    const y = tf.add(x, 1);
    expect(tapeState().gradientDepth).toBe(0);
    tf.dispose([g2, y, x]);
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe.each(BACKENDS)('checkpoint() on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each([
    ['without dropout', 0],
    ['with ops.dropout at a fixed seed', 0.3],
  ])('%s: value and grads (x, vars, the variable before the blocks) equal the un-checkpointed function', (_n, p) => {
    const ref = CKPT_REF.get(`${backend}:${p}`)!;
    const start = tf.memory().numTensors;
    const s = ckptSetup();
    const f = ckptLoss(s, p, true);
    const wrt = [s.x, ...s.vars, s.w0];
    // through the engine's gradients() (what training uses)...
    const r = gradients(() => f(s.x), wrt);
    expect(r.value.dataSync()[0]).toBeCloseTo(ref.value, 4);
    expect(Math.abs(r.value.dataSync()[0] - ref.value)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.value)));
    r.grads.forEach((g, i) => expectRel(g!, ref.grads[i], 1e-4, `gradients(): grad ${i}`));
    // ... and through tfjs's own tf.grads
    const g = tf.grads(() => f(s.x))(wrt);
    g.forEach((gi, i) => expectRel(gi, ref.grads[i], 1e-4, `tf.grads: grad ${i}`));
    // The consts survive the backward pass (they are the caller's).
    expect(s.consts[0].isDisposed).toBe(false);
    expect(s.x.isDisposed).toBe(false);
    tf.dispose([r.value, ...r.grads.filter((t): t is tf.Tensor => !!t), ...g]);
    s.dispose();
    expect(tf.memory().numTensors).toBe(start);
    expect(tapeState().gradientDepth).toBe(0);
  });

  it('the forward value alone (no gradient) equals the function and keeps nothing', () => {
    const start = tf.memory().numTensors;
    const s = ckptSetup();
    const fn = blockFn(s.vars, 0.3);
    const a = tf.tidy(() => values(checkpoint(fn, s.x, s.consts, s.vars)));
    const b = tf.tidy(() => values(fn(s.x, s.consts)));
    expect(a).toEqual(b);
    s.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('a variable of the block that is not listed in vars and a const get no gradient; listed ones do', () => {
    const start = tf.memory().numTensors;
    const s = ckptSetup();
    const fn = blockFn(s.vars, 0);
    const r = gradients(() => tf.sum(checkpoint(fn, s.x, s.consts, [s.vars[0]])), [s.x, s.vars[0], s.consts[0]]);
    expect(r.grads[0]).not.toBeNull();
    expect(r.grads[1]).not.toBeNull();
    expect(r.grads[2]).toBeNull();
    tf.dispose([r.value, ...r.grads.filter((t): t is tf.Tensor => !!t)]);
    s.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('repeated checkpointed steps leak no tensors', () => {
    const s = ckptSetup();
    const f = ckptLoss(s, 0.3, true);
    const once = () => {
      const r = gradients(() => f(s.x), [s.x, ...s.vars, s.w0]);
      tf.dispose([r.value, ...r.grads.filter((t): t is tf.Tensor => !!t)]);
    };
    once();
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) once();
    expect(tf.memory().numTensors).toBe(n);
    s.dispose();
  });
});

/**
 * The fused ops (src/engine/ops/fused.ts, src/engine/ops/cross-entropy.ts) against tfjs's own autodiff of the
 * plain composite of the same math: values within 1e-5, gradients (for every input that takes one, including
 * trainable norm parameters) within 1e-4 relative, on cpu and wasm. Frozen parameters get no gradient slot.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import * as ops from '../src/engine/ops/fused';
import { IGNORE_INDEX, lmHeadEval, lmHeadLoss } from '../src/engine/ops/cross-entropy';
import { BACKENDS } from './helpers';
import { expectClose, expectRel, ints, randn, values } from './support/numeric';

const VAL_TOL = 1e-5;
const GRAD_TOL = 1e-4;

type F = (...xs: tf.Tensor[]) => tf.Tensor;

/** A variable that owns its initial value (tf.variable(t) keeps t's handle alive otherwise). */
function owned(t: tf.Tensor, trainable = true): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** Value and gradients (with upstream dy) of f at xs, by tfjs's own engine.gradients (tf.grads). */
function tfGrads(f: F, xs: tf.Tensor[], dy: tf.Tensor): { value: Float32Array; grads: Float32Array[] } {
  const value = tf.tidy(() => values(f(...xs)));
  const grads = tf.grads(f)(xs, dy);
  const out = grads.map(values);
  tf.dispose(grads);
  return { value, grads: out };
}

/** Gradients where some inputs may have none: tfjs's engine.gradients with allowNoGradients. */
function gradSlots(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor): (Float32Array | null)[] {
  const e = tf.engine() as unknown as {
    gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allow?: boolean): { value: tf.Tensor; grads: (tf.Tensor | undefined | null)[] };
  };
  const { value, grads } = e.gradients(f, xs, dy, true);
  value.dispose();
  const out = grads.map((g) => (g ? values(g) : null));
  tf.dispose(grads.filter((g): g is tf.Tensor => !!g));
  return out;
}

/** fused and plain agree in value and in every gradient. */
function compare(fused: F, plain: F, xs: tf.Tensor[], dy: tf.Tensor, labels: string[]): void {
  const got = tfGrads(fused, xs, dy);
  const want = tfGrads(plain, xs, dy);
  expectClose(got.value, want.value, VAL_TOL, 'value');
  want.grads.forEach((g, i) => expectRel(got.grads[i], g, GRAD_TOL, `d/d${labels[i]}`));
}

// ---------------------------------------------------------------------------------------------------------
// Plain composites (the math as transformers writes it)

const geluTanhRef = (x: tf.Tensor) =>
  tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
const geluErfRef = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
const siluRef = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));
const gatedSiluRef = (g: tf.Tensor, u: tf.Tensor) => tf.mul(siluRef(g), u);

function layerNormRef(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const m = tf.mean(x, -1, true);
  const c = tf.sub(x, m);
  const v = tf.mean(tf.mul(c, c), -1, true);
  return tf.add(tf.mul(tf.div(c, tf.sqrt(tf.add(v, eps))), w), b);
}

function rmsNormRef(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return tf.mul(tf.div(x, tf.sqrt(tf.add(tf.mean(tf.mul(x, x), -1, true), eps))), w);
}

/** kv heads repeated as transformers' repeat_kv does: query head h reads kv head floor(h / (H / G)). */
function repeatKv(t: tf.Tensor, H: number): tf.Tensor {
  const [B, G, S, D] = t.shape;
  if (G === H) return t;
  const heads = Array.from({ length: H }, (_, h) => tf.slice(t, [0, Math.floor(h / (H / G!)), 0, 0], [B!, 1, S!, D!]));
  return tf.concat(heads, 1);
}

function attentionRef(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, scale: number, mask?: tf.Tensor): tf.Tensor {
  const H = q.shape[1]!;
  const scores = tf.add(tf.mul(tf.matMul(q as tf.Tensor4D, repeatKv(k, H) as tf.Tensor4D, false, true), scale), bias);
  let p = tf.softmax(scores, -1);
  if (mask) p = tf.mul(p, mask);
  return tf.matMul(p as tf.Tensor4D, repeatKv(v, H) as tf.Tensor4D);
}

/** Causal + right-padding additive bias [B, 1, S, S] (-1e9 where a query may not look), rows of `lengths`. */
function causalPaddingBias(lengths: number[], S: number): tf.Tensor {
  const B = lengths.length;
  const d = new Float32Array(B * S * S);
  for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
    if (j > i || j >= lengths[b]) d[(b * S + i) * S + j] = -1e9;
  }
  return tf.tensor4d(d, [B, 1, S, S]);
}

/** Mean cross-entropy of h W^T against labels, IGNORE_INDEX rows skipped, 0 when none is scored. */
function crossEntropyRef(h: tf.Tensor, w: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const V = w.shape[0]!;
  const logp = tf.logSoftmax(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D, false, true), -1);
  const valid = tf.cast(tf.notEqual(labels, IGNORE_INDEX), 'float32');
  const oh = tf.oneHot(tf.where(tf.notEqual(labels, IGNORE_INDEX), labels, tf.zerosLike(labels)), V);
  const nll = tf.neg(tf.sum(tf.mul(logp, oh), -1));
  const count = tf.sum(valid);
  return tf.div(tf.sum(tf.mul(nll, valid)), tf.maximum(count, 1)) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------------------

describe.each(BACKENDS)('fused ops on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  describe('activations', () => {
    // Wide inputs (std 3, plus saturated values) exercise both tails of sigmoid / erf.
    const input = () => tf.tidy(() => tf.concat([randn([3, 5, 8], 11, 3).reshape([-1]), tf.tensor1d([-12, -6, -0.5, 0, 0.5, 6, 12])]));
    it.each([
      ['geluTanh', ops.geluTanh, geluTanhRef],
      ['geluErf', ops.geluErf, geluErfRef],
      ['silu', ops.silu, siluRef],
    ] as const)('%s: value and gradient equal the plain composite', (_name, fused, plain) => {
      const start = tf.memory().numTensors;
      const x = input();
      const dy = randn(x.shape, 12);
      compare(fused as F, plain as F, [x], dy, ['x']);
      tf.dispose([x, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('gatedSilu: value and both gradients equal act(gate) * up', () => {
      const start = tf.memory().numTensors;
      const g = randn([2, 7, 12], 21, 2.5);
      const u = randn([2, 7, 12], 22);
      const dy = randn([2, 7, 12], 23);
      compare(ops.gatedSilu, gatedSiluRef, [g, u], dy, ['gate', 'up']);
      tf.dispose([g, u, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });
  });

  describe('rope', () => {
    it('value and gradient equal x * cos + rotate_half(x) * sin as plain ops', () => {
      const start = tf.memory().numTensors;
      const x = randn([2, 3, 5, 8], 31); // [B, H, S, D]
      const angles = tf.tidy(() => tf.mul(tf.range(0, 5).reshape([5, 1]), tf.tensor1d([1, 0.3, 0.1, 0.01, 1, 0.3, 0.1, 0.01]).reshape([1, 8])));
      const cos = tf.cos(angles);
      const sin = tf.sin(angles);
      const plain = (t: tf.Tensor) => {
        const [a, b] = tf.split(t, 2, -1);
        return tf.add(tf.mul(t, cos), tf.mul(tf.concat([tf.neg(b), a], -1), sin));
      };
      const dy = randn(x.shape, 32);
      compare(((t: tf.Tensor) => ops.rope(t, cos, sin)) as F, plain as F, [x], dy, ['x']);
      tf.dispose([x, angles, cos, sin, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });
  });

  describe('layerNorm', () => {
    const C = 16;
    // Offset and scaled rows: the mean must really be removed.
    const makeX = () => tf.tidy(() => tf.add(randn([2, 5, C], 31, 2), randn([2, 5, 1], 32, 3)));

    it.each([1e-5, 1e-12])('trainable weight and bias (tf.Variable), eps %s: value and dx, dweight, dbias', (eps) => {
      const start = tf.memory().numTensors;
      const x = makeX();
      const w = owned(tf.tidy(() => randn([C], 33, 0.5).add(1)), true);
      const b = owned(randn([C], 34, 0.3), true);
      const dy = randn(x.shape, 35);
      compare(
        (xx, ww, bb) => ops.layerNorm(xx, ww, bb, eps),
        (xx, ww, bb) => layerNormRef(xx, ww, bb, eps),
        [x, w, b], dy, ['x', 'weight', 'bias'],
      );
      tf.dispose([x, w, b, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('frozen weight and bias: dx equals the composite, and there is no gradient slot for them', () => {
      const start = tf.memory().numTensors;
      const x = makeX();
      const w = tf.tidy(() => tf.add(randn([C], 36, 0.5), 1));
      const b = randn([C], 37, 0.3);
      ops.markFrozen(w);
      ops.markFrozen(b);
      expect(ops.needsGrad(w)).toBe(false);
      const dy = randn(x.shape, 38);
      compare((xx) => ops.layerNorm(xx, w, b, 1e-5), (xx) => layerNormRef(xx, w, b, 1e-5), [x], dy, ['x']);
      const slots = gradSlots(() => ops.layerNorm(x, w, b, 1e-5), [x, w, b], dy);
      expect(slots[0]).not.toBeNull();
      expect(slots[1]).toBeNull();
      expect(slots[2]).toBeNull();
      tf.dispose([x, w, b, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it.each([
      ['trainable weight, frozen bias', true, false],
      ['frozen weight, trainable bias', false, true],
    ])('%s: the trainable one gets the composite gradient, the frozen one none', (_n, wTrain, bTrain) => {
      const start = tf.memory().numTensors;
      const x = makeX();
      const w0 = tf.tidy(() => tf.add(randn([C], 41, 0.5), 1));
      const b0 = randn([C], 42, 0.3);
      const w = wTrain ? owned(w0, true) : w0;
      const b = bTrain ? owned(b0, true) : b0;
      if (!wTrain) ops.markFrozen(w);
      if (!bTrain) ops.markFrozen(b);
      const dy = randn(x.shape, 43);
      const trained = wTrain ? w : b;
      const want = tfGrads((xx, t) => layerNormRef(xx, wTrain ? t : w, bTrain ? t : b, 1e-5), [x, trained], dy);
      const got = tfGrads((xx, t) => ops.layerNorm(xx, wTrain ? t : w, bTrain ? t : b, 1e-5), [x, trained], dy);
      expectClose(got.value, want.value, VAL_TOL, 'value');
      expectRel(got.grads[0], want.grads[0], GRAD_TOL, 'dx');
      expectRel(got.grads[1], want.grads[1], GRAD_TOL, wTrain ? 'dweight' : 'dbias');
      const slots = gradSlots(() => ops.layerNorm(x, w, b, 1e-5), [x, w, b], dy);
      expect(slots.map((s) => s !== null)).toEqual([true, wTrain, bTrain]);
      tf.dispose([x, w, b, w0, b0, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('a non-trainable tf.Variable weight gets no gradient', () => {
      const x = makeX();
      const w = owned(tf.ones([C]), false);
      const b = owned(tf.zeros([C]), false);
      expect(ops.needsGrad(w)).toBe(false);
      const slots = gradSlots(() => ops.layerNorm(x, w, b, 1e-5), [x, w, b]);
      expect(slots.map((s) => s !== null)).toEqual([true, false, false]);
      tf.dispose([x, w, b]);
    });
  });

  describe('rmsNorm', () => {
    const C = 24;
    it('trainable weight (tf.Variable): value, dx and dweight', () => {
      const start = tf.memory().numTensors;
      const x = randn([3, 4, C], 51, 2);
      const w = owned(tf.tidy(() => tf.add(randn([C], 52, 0.5), 1)), true);
      const dy = randn(x.shape, 53);
      compare((xx, ww) => ops.rmsNorm(xx, ww, 1e-6), (xx, ww) => rmsNormRef(xx, ww, 1e-6), [x, w], dy, ['x', 'weight']);
      tf.dispose([x, w, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('a plain (unmarked) tensor weight counts as trainable; a frozen one has no gradient slot', () => {
      const start = tf.memory().numTensors;
      const x = randn([2, 6, C], 54, 1.5);
      const w = tf.tidy(() => tf.add(randn([C], 55, 0.5), 1));
      const dy = randn(x.shape, 56);
      expect(ops.needsGrad(w)).toBe(true);
      compare((xx, ww) => ops.rmsNorm(xx, ww, 1e-5), (xx, ww) => rmsNormRef(xx, ww, 1e-5), [x, w], dy, ['x', 'weight']);
      ops.markFrozen(w);
      compare((xx) => ops.rmsNorm(xx, w, 1e-5), (xx) => rmsNormRef(xx, w, 1e-5), [x], dy, ['x']);
      expect(gradSlots(() => ops.rmsNorm(x, w, 1e-5), [x, w], dy).map((s) => s !== null)).toEqual([true, false]);
      tf.dispose([x, w, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });
  });

  describe('dropout', () => {
    it.each([0.1, 0.5])('p=%s: mask values are 0 or 1/(1-p), mean ~1, fraction zero ~p', (p) => {
      const start = tf.memory().numTensors;
      const n = 200_000;
      const x = tf.ones([n]);
      const y = ops.dropout(x, p, 1234);
      const v = y.dataSync();
      let zeros = 0;
      let other = 0;
      let sum = 0;
      const keep = 1 / (1 - p);
      for (let i = 0; i < n; i++) {
        if (v[i] === 0) zeros++;
        else if (Math.abs(v[i] - keep) > 1e-6) other++;
        sum += v[i];
      }
      expect(other, 'values neither 0 nor 1/(1-p)').toBe(0);
      // Binomial: std of the zero fraction sqrt(p (1-p) / n) <= 0.0011; 5 sigma below.
      expect(Math.abs(zeros / n - p)).toBeLessThan(0.006);
      expect(Math.abs(sum / n - 1)).toBeLessThan(0.012);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('is deterministic by seed, differs across seeds, and p=0 is the identity', () => {
      const x = randn([64, 33], 61);
      const a = tf.tidy(() => values(ops.dropout(x, 0.3, 7)));
      const b = tf.tidy(() => values(ops.dropout(x, 0.3, 7)));
      const c = tf.tidy(() => values(ops.dropout(x, 0.3, 8)));
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
      const id = ops.dropout(x, 0, 7);
      expect(values(id)).toEqual(values(x));
      x.dispose();
      if (!id.isDisposed) id.dispose();
    });

    it('value is x * mask and the gradient is dy * mask (mask read off the output)', () => {
      const start = tf.memory().numTensors;
      const p = 0.25;
      const x = tf.tidy(() => tf.add(tf.abs(randn([40, 17], 62)), 0.1)); // nonzero: mask = y / x
      const dy = randn(x.shape, 63);
      const y = tf.tidy(() => values(ops.dropout(x, p, 99)));
      const xv = values(x);
      const mask = y.map((yi, i) => yi / xv[i]);
      for (const m of mask) expect(m === 0 || Math.abs(m - 1 / (1 - p)) < 1e-5).toBe(true);
      const exact = mask.map((m) => (m === 0 ? 0 : 1 / (1 - p)));
      const [g] = tf.grads((t: tf.Tensor) => ops.dropout(t, p, 99))([x], dy);
      const dyv = values(dy);
      expectRel(g, dyv.map((d, i) => d * exact[i]), GRAD_TOL, 'dx');
      expectClose(y, xv.map((xi, i) => xi * exact[i]), VAL_TOL, 'value');
      tf.dispose([x, dy, g]);
      expect(tf.memory().numTensors).toBe(start);
    });
  });

  describe('attention', () => {
    const B = 2;
    const H = 4;
    const S = 6;
    const D = 8;
    const scale = 1 / Math.sqrt(D);

    it.each([4, 2, 1])('H=4, Hkv=%s, causal + padding bias: value and dq, dk, dv', (G) => {
      const start = tf.memory().numTensors;
      const q = randn([B, H, S, D], 71, 1.5);
      const k = randn([B, G, S, D], 72, 1.5);
      const v = randn([B, G, S, D], 73);
      const bias = causalPaddingBias([S, 4], S);
      const dy = randn([B, H, S, D], 74);
      compare(
        (qq, kk, vv) => ops.attention(qq, kk, vv, { bias, scale }),
        (qq, kk, vv) => attentionRef(qq, kk, vv, bias, scale),
        [q, k, v], dy, ['q', 'k', 'v'],
      );
      tf.dispose([q, k, v, bias, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('a broadcast [1, 1, S, S] bias (causal only), as the cached mask is passed', () => {
      const q = randn([B, H, S, D], 75);
      const k = randn([B, 2, S, D], 76);
      const v = randn([B, 2, S, D], 77);
      const bias = causalPaddingBias([S], S); // [1, 1, S, S]
      const dy = randn([B, H, S, D], 78);
      compare(
        (qq, kk, vv) => ops.attention(qq, kk, vv, { bias, scale: 0.5 }),
        (qq, kk, vv) => attentionRef(qq, kk, vv, bias, 0.5),
        [q, k, v], dy, ['q', 'k', 'v'],
      );
      tf.dispose([q, k, v, bias, dy]);
    });

    describe('with dropout', () => {
      // D = S so that v = identity reads the dropped probabilities straight off the output.
      const Dd = S;
      const p = 0.3;
      const eyeV = (G: number) => tf.tidy(() => tf.tile(tf.eye(S).reshape([1, 1, S, S]), [B, G, 1, 1]));

      it('p=0 equals no dropout; the same seed gives the same output twice, another seed another', () => {
        const q = randn([B, H, S, Dd], 81);
        const k = randn([B, 2, S, Dd], 82);
        const v = randn([B, 2, S, Dd], 83);
        const bias = causalPaddingBias([S, 3], S);
        const run = (o: Partial<ops.AttentionOptions>) => tf.tidy(() => values(ops.attention(q, k, v, { bias, scale, ...o })));
        const plain = run({});
        expect(run({ dropout: 0, seed: 5 })).toEqual(plain);
        const a = run({ dropout: p, seed: 5 });
        expect(run({ dropout: p, seed: 5 })).toEqual(a);
        expect(run({ dropout: p, seed: 6 })).not.toEqual(a);
        expect(a).not.toEqual(plain);
        tf.dispose([q, k, v, bias]);
      });

      it.each([4, 2, 1])('Hkv=%s: value and gradients equal the composite with the same mask on the probabilities', (G) => {
        const start = tf.memory().numTensors;
        const q = randn([B, H, S, Dd], 84, 1.5);
        const k = randn([B, G, S, Dd], 85, 1.5);
        const v = randn([B, G, S, Dd], 86);
        const bias = causalPaddingBias([S, 4], S);
        const dy = randn([B, H, S, Dd], 87);
        const seed = 1000 + G;
        // The dropped probabilities, read with v = I, divided by the plain probabilities: the mask.
        const eye = eyeV(G);
        const dropped = tf.tidy(() => values(ops.attention(q, k, eye, { bias, scale, dropout: p, seed })));
        const probs = tf.tidy(() => values(attentionRef(q, k, eye, bias, scale)));
        const keep = 1 / (1 - p);
        let kept = 0;
        let dropped0 = 0;
        const mask = new Float32Array(probs.length);
        for (let i = 0; i < probs.length; i++) {
          if (probs[i] < 1e-6) continue; // masked key: the mask value does not matter
          const m = dropped[i] / probs[i];
          expect(Math.abs(m) < 1e-4 || Math.abs(m - keep) < 1e-3, `mask entry ${m}`).toBe(true);
          mask[i] = Math.abs(m) < 1e-4 ? 0 : keep;
          if (mask[i]) kept++;
          else dropped0++;
        }
        expect(kept).toBeGreaterThan(0);
        expect(dropped0).toBeGreaterThan(0);
        const m4 = tf.tensor4d(mask, [B, H, S, S]);
        compare(
          (qq, kk, vv) => ops.attention(qq, kk, vv, { bias, scale, dropout: p, seed }),
          (qq, kk, vv) => attentionRef(qq, kk, vv, bias, scale, m4),
          [q, k, v], dy, ['q', 'k', 'v'],
        );
        tf.dispose([q, k, v, bias, dy, eye, m4]);
        expect(tf.memory().numTensors).toBe(start);
      });
    });
  });

  describe('lmHeadLoss / lmHeadEval (fused LM head + cross-entropy)', () => {
    const C = 16;

    /** Labels in [0, V) with some rows IGNORE_INDEX. */
    function labelsFor(N: number, V: number, seed: number, ignoreEvery = 4): tf.Tensor {
      const l = ints(N, V, seed);
      for (let i = 1; i < N; i += ignoreEvery) l[i] = IGNORE_INDEX;
      return tf.tensor1d(l, 'int32');
    }

    /** h [N, C] and W [V, C] with logits of a few nats spread, and later vocabulary slices scaled up so that the
     *  running maximum of the streamed pass changes between slices. */
    function inputs(N: number, V: number, seed: number) {
      const h = randn([N, C], seed, 1);
      const w = tf.tidy(() => tf.mul(randn([V, C], seed + 1, 0.5), tf.linspace(0.5, 1.5, V).reshape([V, 1])));
      return { h, w };
    }

    it.each([
      [3, 5000], [40, 5000], [7, 300], [1, 2049],
    ])('frozen W (markFrozen), N=%s, V=%s: loss and dh equal log-softmax cross-entropy', (N, V) => {
      const start = tf.memory().numTensors;
      const { h, w } = inputs(N, V, 100 + N);
      ops.markFrozen(w);
      const labels = labelsFor(N, V, 7 + N, 3);
      const dy = tf.scalar(0.7);
      compare((hh) => lmHeadLoss(hh, w, labels), (hh) => crossEntropyRef(hh, w, labels), [h], dy, ['h']);
      expect(gradSlots(() => lmHeadLoss(h, w, labels), [h, w], dy).map((s) => s !== null)).toEqual([true, false]);
      tf.dispose([h, w, labels, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    // 100 x 50,000 spans two row blocks of the trainable path (about 4M logits per block); it takes 10 s on the
    // cpu backend, so it runs on wasm only.
    const trainableCases: [number, number][] = [[3, 5000], [40, 5000], ...(backend === 'wasm' ? [[100, 50000] as [number, number]] : [])];
    it.each(trainableCases)('trainable W (tf.Variable), N=%s, V=%s: loss, dh and dW equal log-softmax cross-entropy', (N, V) => {
      const start = tf.memory().numTensors;
      const { h, w: w0 } = inputs(N, V, 200 + N);
      const w = owned(w0, true);
      const labels = labelsFor(N, V, 9 + N, 5);
      const dy = tf.scalar(1.3);
      compare((hh, ww) => lmHeadLoss(hh, ww, labels), (hh, ww) => crossEntropyRef(hh, ww, labels), [h, w], dy, ['h', 'W']);
      tf.dispose([h, w0, w, labels, dy]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('frozen W over 25 vocabulary slices (N=8, V=50000)', () => {
      const { h, w } = inputs(8, 50000, 300);
      ops.markFrozen(w);
      const labels = labelsFor(8, 50000, 301, 3);
      const dy = tf.scalar(1);
      compare((hh) => lmHeadLoss(hh, w, labels), (hh) => crossEntropyRef(hh, w, labels), [h], dy, ['h']);
      tf.dispose([h, w, labels, dy]);
    });

    it.each([false, true])('every row ignored (trainable W: %s): loss 0 and all-zero gradients', (trainable) => {
      const start = tf.memory().numTensors;
      const { h, w: w0 } = inputs(6, 5000, 400);
      const w = trainable ? owned(w0, true) : w0;
      if (!trainable) ops.markFrozen(w);
      const labels = tf.fill([6], IGNORE_INDEX, 'int32');
      const xs = trainable ? [h, w] : [h];
      const loss = lmHeadLoss(h, w, labels);
      expect(loss.dataSync()[0]).toBe(0);
      loss.dispose();
      const grads = tf.grads((...t: tf.Tensor[]) => lmHeadLoss(t[0], trainable ? t[1] : w, labels))(xs);
      for (const g of grads) {
        expect(g.shape).toEqual(xs[grads.indexOf(g)].shape);
        expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
      }
      tf.dispose([h, w0, w, labels, ...grads]);
      expect(tf.memory().numTensors).toBe(start);
    });

    it.each([
      [3, 5000], [40, 5000], [8, 50000], [5, 100],
    ])('lmHeadEval N=%s, V=%s: preds are the argmax of the plain logits, loss the plain loss', (N, V) => {
      const start = tf.memory().numTensors;
      const { h, w } = inputs(N, V, 500 + N);
      ops.markFrozen(w);
      const labels = labelsFor(N, V, 501, 4);
      const { loss, preds } = lmHeadEval(h, w, labels);
      const want = tf.tidy(() => values(tf.argMax(tf.matMul(h, w, false, true), -1).cast('float32')));
      const wantLoss = tf.tidy(() => values(crossEntropyRef(h, w, labels)));
      expect(preds.shape).toEqual([N]);
      expect(preds.dtype).toBe('int32');
      expect(Array.from(preds.dataSync())).toEqual(Array.from(want));
      expectClose(loss.dataSync(), wantLoss, VAL_TOL, 'eval loss');
      tf.dispose([h, w, labels, loss, preds]);
      expect(tf.memory().numTensors).toBe(start);
    });
  });
});

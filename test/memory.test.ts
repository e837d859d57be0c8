/**
 * Engine memory: a training session gives back every tensor (and, on wasm, every heap byte) it took; one LoRA
 * step of a GPT-2-124M-shaped model runs with and without gradient checkpointing; the wasm Slice and Identity
 * replacements (src/engine/wasm-matmul.ts) give the cpu backend's results and share buffers.
 * The wasm out-of-memory guard is in test/wasm-oom.test.ts (it grows the heap to 4 GiB).
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { benchConfig, PRESETS, type BenchShape } from '../src/engine/bench';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { buildModel } from '../src/engine/models';
import { attentionBias } from '../src/engine/models/layers';
import { createPeftModel, LoraModel } from '../src/engine/peft';
import { loraConfig } from '../src/engine/peft/lora/config';
import { promptTuningConfig } from '../src/engine/peft/prompt-tuning/config';
import type { PeftConfig } from '../src/engine/peft/config';
import { TrainingSession } from '../src/engine/session';
import { collate, disposeBatch, type Encoded, type Example } from '../src/engine/train/data';
import { AdamW } from '../src/engine/train/optimizer';
import { optimizerStep, peftTrainable } from '../src/engine/train/step';
import { tensorHeap, wasmHeapBytes } from '../src/engine/wasm-heap';
import { BACKENDS, FIX } from './helpers';
import { ints, rng } from './support/numeric';

function clmData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({ inputIds: Array.from({ length: 12 + (i % 4) }, (_, j) => 10 + ((i + j) % 6) * 7) }));
}

/** Create, step 3 times, evaluate, dispose. */
async function sessionCycle(peft: PeftConfig, gradientCheckpointing: boolean, batchSize: number): Promise<void> {
  const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
  const s = await TrainingSession.create({
    config, weights: tensors, peft,
    data: { train: clmData(16), validation: clmData(4) },
    args: { learningRate: 1e-2, batchSize, maxSteps: 5, seed: 5, gradientCheckpointing },
  });
  try {
    for (let i = 0; i < 3; i++) await s.step();
    const ev = await s.evaluate();
    expect(Number.isFinite(ev.evalLoss)).toBe(true);
  } finally {
    s.dispose();
  }
}

const live = () => ({ numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes, heap: tensorHeap.live });

describe.each(BACKENDS)('a TrainingSession gives back its memory on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  const cases: [string, () => PeftConfig, boolean][] = [
    ['LoRA', () => loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_fc'] }), false],
    ['LoRA with gradient checkpointing', () => loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_fc'] }), true],
    ['prompt tuning', () => promptTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4 }), false],
  ];
  // The cpu backend is slow: one case there, all on wasm.
  it.each(backend === 'wasm' ? cases : cases.slice(0, 1))(
    '%s: tensor count and bytes (and the wasm heap\'s live bytes) return to their values before create',
    async (_n, peft, ckpt) => {
      const batchSize = backend === 'wasm' ? 8 : 4;
      // A first cycle fills the per-shape caches (causal masks) that outlive a session by design.
      await sessionCycle(peft(), ckpt, batchSize);
      const before = live();
      await sessionCycle(peft(), ckpt, batchSize);
      const after = live();
      expect(after.numTensors, 'tf.memory().numTensors').toBe(before.numTensors);
      expect(after.numBytes, 'tf.memory().numBytes').toBe(before.numBytes);
      if (backend === 'wasm') expect(after.heap, 'tensorHeap.live').toBe(before.heap);
    },
  );
});

describe('one LoRA step of a randomly initialised GPT-2-124M-shaped model (wasm)', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });

  it('runs with and without gradient checkpointing: loss near ln(50257), LoRA B updated, everything freed', async () => {
    const shape: BenchShape = { ...PRESETS['gpt2-124m'], batch: 1, seq: 32, r: 8 };
    // The causal mask of this length is cached for the process (by design): create it before counting.
    attentionBias(undefined, 1, shape.seq, true).dispose();
    const start = tf.memory().numTensors;
    const heap0 = tensorHeap.live;
    const model = buildModel(benchConfig(shape), new Map(), { initMissing: 'all', task: 'CAUSAL_LM', seed: 0 });
    const losses: number[] = [];
    try {
      expect(model.report.initialised.length).toBeGreaterThan(100);
      const ids = Array.from(ints(shape.seq, shape.vocab, 17));
      const rows: Encoded[] = [{ ids, labels: ids.slice() }];
      for (const checkpoint of [false, true]) {
        const peft = createPeftModel(model, loraConfig({ taskType: 'CAUSAL_LM', r: 8, loraAlpha: 16, targetModules: ['c_attn'] }), 0) as LoraModel;
        const opt = new AdamW({ weightDecay: 0 });
        const batch = collate(rows, 'CAUSAL_LM', 0);
        try {
          expect(peft.layers.size).toBe(12);
          for (const l of peft.layers.values()) expect(l.B.dataSync().every((v) => v === 0)).toBe(true);
          const res = await optimizerStep(peftTrainable(peft, { checkpoint }), opt, [batch], 1e-3, 1);
          losses.push(res.loss);
          expect(Number.isFinite(res.loss)).toBe(true);
          // N(0, 0.02) weights give near-uniform next-token probabilities.
          expect(Math.abs(res.loss - Math.log(50257)), `loss ${res.loss}`).toBeLessThan(0.5);
          expect(Number.isFinite(res.gradNorm) && res.gradNorm > 0).toBe(true);
          for (const [name, l] of peft.layers) {
            const b = l.B.dataSync();
            let m = 0;
            for (const v of b) m = Math.max(m, Math.abs(v));
            expect(m, `${name} B unchanged`).toBeGreaterThan(0);
            expect(m, name).toBeLessThanOrEqual(1e-3 * 1.01); // AdamW's first step moves by at most lr
          }
        } finally {
          disposeBatch(batch);
          opt.dispose();
          peft.dispose();
        }
      }
      // Same weights, same batch: the checkpointed step saw the same loss.
      expect(Math.abs(losses[0] - losses[1])).toBeLessThan(1e-4);
      expect(wasmHeapBytes()).toBeLessThan(4 * 2 ** 30);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
    expect(tensorHeap.live).toBe(heap0);
  }, 120_000);
});

describe('wasm kernel replacements', () => {
  // [input shape, begin, size]
  const SLICES: [number[], number[], number[]][] = [
    [[10], [3], [4]], [[10], [0], [10]], [[10], [7], [-1]], [[10], [9], [1]],
    [[5, 6], [1, 0], [3, 6]], [[5, 6], [1, 2], [3, 3]], [[5, 6], [0, 5], [5, 1]], [[5, 6], [4, 0], [1, -1]], [[5, 6], [1, 0], [0, 6]],
    [[4, 5, 6], [1, 0, 0], [2, 5, 6]], [[4, 5, 6], [0, 1, 0], [4, 3, 6]], [[4, 5, 6], [1, 1, 1], [2, 3, 4]], [[4, 5, 6], [3, 4, 5], [1, 1, 1]],
    [[4, 5, 6], [0, 0, 2], [4, 5, 3]],
    [[2, 3, 4, 5], [0, 1, 0, 0], [2, 2, 4, 5]], [[2, 3, 4, 5], [1, 0, 2, 1], [1, 3, 2, 3]], [[2, 3, 4, 5], [0, 0, 0, 0], [2, 3, 4, 5]],
    [[2, 3, 4, 5], [1, 1, 1, 1], [-1, -1, -1, -1]], [[2, 3, 4, 5], [0, 2, 0, 3], [2, 1, 4, 2]],
  ];
  const DTYPES = ['float32', 'int32', 'bool'] as const;
  const data = (shape: number[], dtype: (typeof DTYPES)[number], seed: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const r = rng(seed);
    if (dtype === 'float32') return Float32Array.from({ length: n }, () => r() * 200 - 100);
    if (dtype === 'int32') return Int32Array.from({ length: n }, () => Math.floor(r() * 2e9 - 1e9));
    return Uint8Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
  };
  const cpuResults = new Map<string, { shape: number[]; values: number[] }>();

  beforeAll(async () => {
    await useNodeBackend('cpu');
    SLICES.forEach(([shape, begin, size], i) => {
      for (const dtype of DTYPES) {
        const x = tf.tensor(data(shape, dtype, i + 1), shape, dtype);
        const y = tf.slice(x, begin, size);
        cpuResults.set(`${i}:${dtype}`, { shape: y.shape, values: Array.from(y.dataSync()) });
        tf.dispose([x, y]);
      }
    });
    await useNodeBackend('wasm');
  });

  it.each(DTYPES)('Slice (%s) equals the cpu backend\'s for contiguous and strided slices of 1-4 D tensors', (dtype) => {
    const start = tf.memory().numTensors;
    SLICES.forEach(([shape, begin, size], i) => {
      const want = cpuResults.get(`${i}:${dtype}`)!;
      const x = tf.tensor(data(shape, dtype, i + 1), shape, dtype);
      const y = tf.slice(x, begin, size);
      // Also through a reshape (a second handle on the same buffer).
      const z = tf.tidy(() => tf.slice(x.reshape(shape), begin, size));
      const label = `slice [${shape}] at [${begin}] size [${size}]`;
      expect(y.dtype).toBe(dtype);
      expect(y.shape, label).toEqual(want.shape);
      expect(Array.from(y.dataSync()), label).toEqual(want.values);
      expect(Array.from(z.dataSync()), `${label} of a reshape`).toEqual(want.values);
      tf.dispose([x, y, z]);
    });
    expect(tf.memory().numTensors).toBe(start);
  });

  it('Slice of a large tensor (rows of an embedding-sized table) and its gradient', () => {
    const x = tf.tensor2d(Float32Array.from({ length: 3000 * 64 }, (_, i) => i), [3000, 64]);
    const y = tf.slice(x, [1234, 8], [5, 16]);
    const v = y.dataSync();
    for (let r = 0; r < 5; r++) for (let c = 0; c < 16; c++) expect(v[r * 16 + c]).toBe((1234 + r) * 64 + 8 + c);
    const [g] = tf.grads((t: tf.Tensor) => tf.slice(t, [1, 1], [2, 2]))([tf.ones([3, 4])]);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0]);
    tf.dispose([x, y, g]);
  });

  it('Identity shares the buffer: clone() does not grow tensorHeap.live, and outlives its source', () => {
    const base = tensorHeap.live;
    const a = tf.tensor1d(Float32Array.from({ length: 1 << 18 }, (_, i) => i % 1000));
    const afterA = tensorHeap.live;
    expect(afterA - base).toBe(4 << 18); // one buffer of 1 MiB
    const b = a.clone();
    const c = tf.clone(b);
    expect(tensorHeap.live).toBe(afterA);
    expect(b.dataId).toBe(a.dataId);
    a.dispose();
    expect(tensorHeap.live, 'the shared buffer is still referenced').toBe(afterA);
    // Still the right values (i mod 1000), also as an input to a kernel.
    const doubled = tf.tidy(() => tf.mul(b, 2).dataSync());
    expect(doubled.every((d, i) => d === 2 * (i % 1000))).toBe(true);
    const v = c.dataSync();
    expect(v[999]).toBe(999);
    expect(v[1000]).toBe(0);
    expect(v[(1 << 18) - 1]).toBe(143);
    b.dispose();
    expect(tensorHeap.live).toBe(afterA);
    c.dispose();
    expect(tensorHeap.live).toBe(base);
  });
});

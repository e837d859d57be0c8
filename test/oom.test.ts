/**
 * Out of memory in the middle of a training step (simulated with a tensor-memory limit on the wasm heap, as on
 * a device with less memory): the step fails with OUT_OF_MEMORY, the weights are those of the last good step,
 * nothing the step allocated stays behind, and training continues once memory is available again.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession } from '../src/engine/session';
import { setWasmTensorLimit, tensorHeap } from '../src/engine/wasm-heap';
import { FIX, rejection } from './helpers';

beforeAll(async () => {
  await useNodeBackend('wasm');
});
afterEach(() => setWasmTensorLimit(null));

const data = Array.from({ length: 16 }, (_, i) => ({ inputIds: Array.from({ length: 24 }, (_, j) => 10 + ((i + j) % 9) * 5) }));

describe('out of memory mid-step', () => {
  it('fails the step with OUT_OF_MEMORY, keeps the last good weights and leaks nothing', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const s = await TrainingSession.create({
      config, weights: tensors, task: 'CAUSAL_LM',
      peft: loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_fc'] }),
      data: { train: data }, args: { learningRate: 1e-2, batchSize: 8, maxSteps: 10, scheduler: 'constant' },
    });
    try {
      tensorHeap.resetPeak();
      await s.step();
      const good = (await s.exportAdapter())['adapter_model.safetensors'];
      const tensorsBefore = tf.memory().numTensors;
      const liveBefore = tensorHeap.live;
      const stepPeak = tensorHeap.peak - liveBefore; // what one step needs on top of the model
      setWasmTensorLimit(liveBefore + stepPeak / 2); // runs out half way through the step
      const err = await rejection(s.step());
      expect(err.code).toBe('OUT_OF_MEMORY');
      expect(err.message).toMatch(/batch size|gradient checkpointing/);
      setWasmTensorLimit(null);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      // A tfjs-wasm kernel that fails part way may keep a reference to its (small) inputs; nothing else stays.
      expect(tensorHeap.live - liveBefore).toBeLessThan(stepPeak / 20);
      expect(s.completedSteps).toBe(1);
      expect(Buffer.from((await s.exportAdapter())['adapter_model.safetensors']).equals(Buffer.from(good))).toBe(true);
      const m = await s.step(); // memory is back: training goes on
      expect(Number.isFinite(m.loss)).toBe(true);
      expect(s.completedSteps).toBe(2);
    } finally {
      s.dispose();
    }
  });
});

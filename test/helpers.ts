/** Shared test helpers: fixture paths, reference tensors, comparisons. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { loadModelDir, readSafetensorsFile } from '../src/engine/io/node-files';
import type { LoadedTensor } from '../src/engine/io/safetensors';
import { ARCHITECTURES, buildModel } from '../src/engine/models';
import type { ArchConfig, PeftDefaults, TaskType } from '../src/engine/models/types';
import type { Batch } from '../src/engine/train/data';

export const FIX = fileURLToPath(new URL('./fixtures', import.meta.url));
export const BACKENDS = ['cpu', 'wasm'] as const;

export function fixtureModel(name: string, task?: TaskType) {
  const { config, tensors } = loadModelDir(join(FIX, 'models', name));
  return buildModel(config, tensors, { task });
}

export function fixtureTensors(...parts: string[]): Map<string, LoadedTensor> {
  return readSafetensorsFile(join(FIX, ...parts)).tensors;
}

export function toTensor(t: LoadedTensor): tf.Tensor {
  return tf.tensor(t.data as Float32Array | Int32Array, t.shape, t.data instanceof Float32Array ? 'float32' : 'int32');
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |a - b| / max |b|: the relative error of a gradient tensor. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ref = 0;
  for (let i = 0; i < b.length; i++) ref = Math.max(ref, Math.abs(b[i]));
  return maxAbsDiff(a, b) / Math.max(ref, 1e-12);
}

/** Awaits a promise that must reject with an EngineError, and returns the error. */
export async function rejection(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('expected a rejection');
}

/** PEFT's defaults for a model_type, from its architecture file; none for a type the engine lacks. */
export function peftDefaultsOf(modelType: string): PeftDefaults {
  const spec = ARCHITECTURES.find((a) => a.modelTypes.includes(modelType));
  // Every architecture's defaults depend on the model type alone.
  return spec ? spec.peftDefaults({ modelType } as ArchConfig) : { lora: null, adalora: null, ia3: null, ia3Feedforward: null };
}

/** The batch a fixture model's reference.safetensors was computed on (input ids, attention mask, labels). */
export function referenceBatch(model: string): Batch {
  const ref = fixtureTensors('models', model, 'reference.safetensors');
  return {
    inputIds: toTensor(ref.get('input_ids')!) as tf.Tensor2D,
    attentionMask: toTensor(ref.get('attention_mask')!) as tf.Tensor2D,
    labels: toTensor(ref.get('labels')!),
    tokens: 0,
  };
}

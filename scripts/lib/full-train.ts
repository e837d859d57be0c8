/**
 * Shared pieces of the built-in models' pretraining scripts (scripts/pretrain-model.ts for sotu-gpt2,
 * scripts/pretrain-t5.ts for sotu-t5): flag parsing, timestamped logs, atomic writes, a model whose every
 * parameter is a trainable tf.Variable, its state dict in checkpoint key names, and one full-training AdamW step
 * (global-norm clipping, decay / no-decay groups).
 */
import { renameSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { useNodeBackend } from '../../src/engine/io/node-backend';
import type { TensorToWrite } from '../../src/engine/io/safetensors';
import type { Model } from '../../src/engine/models/types';
import type { Batch } from '../../src/engine/train/data';
import { AdamW, clipGradNorm } from '../../src/engine/train/optimizer';
import { lossAndGrads, type Trainable } from '../../src/engine/train/step';

/**
 * `--kebab-case value` / `--flag` / `--flag=value` into a copy of `defaults` (camelCase keys); the type of each
 * default decides how its value is read (boolean flags need no value). Unknown flags and non-numbers are errors.
 */
export function parseFlags<T extends object>(argv: string[], defaults: T): T {
  const o = { ...defaults } as Record<string, unknown>;
  const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2);
    const key = camel(k);
    if (!(key in o)) throw new Error(`unknown flag --${k}`);
    const cur = o[key];
    if (typeof cur === 'boolean') {
      o[key] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`--${k} needs a value`);
    if (typeof cur === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`--${k}: ${v} is not a number`);
      o[key] = n;
    } else o[key] = v;
  }
  return o as T;
}

export const log = (...a: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

export function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** wasm gets the engine's XNNPACK-friendly BatchMatMul (src/engine/wasm-matmul.ts), about 10x faster for training. */
export async function startBackend(name: 'wasm' | 'cpu' | 'wasm-stock'): Promise<void> {
  await useNodeBackend(name === 'cpu' ? 'cpu' : 'wasm', { stockWasmKernels: name === 'wasm-stock' });
}

export interface Net {
  model: Model;
  /** Unique trainable variables (a tied head is one variable with its embedding). */
  vars: tf.Variable[];
  /** The variables weight decay applies to: matrices (rank >= 2), not biases and norms. */
  decay: Set<tf.Variable>;
}

/**
 * Turns every parameter of a freshly built model into a trainable variable (the tied ones point at their
 * source's), optionally starting from `init` (a checkpoint's tensors by name).
 */
export function trainableNet(model: Model, init?: Map<string, { data: Float32Array; shape: number[] }>): Net {
  const vars = new Map<tf.Tensor, tf.Variable>();
  for (const [name, t] of [...model.params]) {
    if (name in model.tied) continue;
    const src = init?.get(name);
    const v = tf.variable(src ? tf.tensor(src.data, src.shape) : t, true, name);
    vars.set(t, v);
    model.params.set(name, v);
    t.dispose();
  }
  for (const [name, src] of Object.entries(model.tied)) model.params.set(name, model.params.get(src)!);
  const list = [...vars.values()];
  return { model, vars: list, decay: new Set(list.filter((v) => v.rank >= 2)) };
}

/** Tensors under the checkpoint's keys, as save_pretrained writes them: tied copies (model.tied) left out. */
export function stateDict(model: Model): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  for (const [name, t] of model.params) {
    if (name in model.tied) continue;
    out.set(name, { shape: t.shape.slice(), data: Float32Array.from(t.dataSync() as Float32Array) });
  }
  return out;
}

export interface Optimizers {
  decay: AdamW;
  noDecay: AdamW;
}

export function makeOptimizers(weightDecay: number, beta2: number): Optimizers {
  return { decay: new AdamW({ weightDecay, beta2 }), noDecay: new AdamW({ weightDecay: 0, beta2 }) };
}

export function disposeOptimizers(o: Optimizers): void {
  o.decay.dispose();
  o.noDecay.dispose();
}

/** One AdamW step with two parameter groups (decay / no decay) after clipping the global gradient norm. */
export async function fullTrainStep(net: Net, trainable: Trainable, opts: Optimizers, batch: Batch, lr: number, clip: number) {
  const { loss, grads } = await lossAndGrads(trainable, batch, true);
  let g = grads;
  try {
    if (!Number.isFinite(loss)) throw new Error(`loss became ${loss}`);
    const clipped = await clipGradNorm(grads, clip);
    g = clipped.grads;
    if (!Number.isFinite(clipped.norm)) throw new Error(`gradient norm became ${clipped.norm}`);
    const d = new Map<tf.Variable, tf.Tensor>();
    const n = new Map<tf.Variable, tf.Tensor>();
    for (const [v, t] of g) (net.decay.has(v) ? d : n).set(v, t);
    opts.decay.apply(d, lr);
    opts.noDecay.apply(n, lr);
    return { loss, gradNorm: clipped.norm };
  } finally {
    for (const t of g.values()) t.dispose();
  }
}

/**
 * Training benchmark on the current tfjs backend, shared by `npm run bench` (Node) and `npm run bench:browser`
 * (the studio's worker): a randomly initialised model of a real shape, LoRA, AdamW, one timed optimizer step
 * after another, with
 * - speed: ms per step, tokens/s, the step's model FLOP/s (counted below) and its ratio to the backend's
 *   own 1024^3 matmul rate;
 * - memory: the wasm heap (WebAssembly memory only grows, so its size at the end is the peak), tfjs's peak
 *   tensor bytes during a step (tf.profile) and where they go: frozen weights, adapter + optimizer state,
 *   activations (the backward pass's peak outside the LM head) and the fused LM-head loss.
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { setWasmThreads } from './backend';
import { buildModel, countParams } from './models';
import type { Model } from './models/types';
import { createPeftModel } from './peft';
import { loraConfig } from './peft/lora/config';
import { onLmHeadPhase } from './ops/cross-entropy';
import { collate, disposeBatch, type Encoded } from './train/data';
import { AdamW } from './train/optimizer';
import { optimizerStep, peftTrainable } from './train/step';
import { Rng } from './random';
import { tensorHeap, wasmHeapBytes } from './wasm-heap';
import { setPackPolicy } from './wasm-matmul';
import { benchGeneration } from './bench-generate';

export interface BenchShape {
  arch: 'gpt2' | 'llama';
  layers: number;
  d: number;
  heads: number;
  /** Key/value heads (llama); default = heads. */
  kvHeads?: number;
  /** MLP size; default 4d (gpt2). */
  ffn?: number;
  vocab: number;
  batch: number;
  seq: number;
  r: number;
  targets: string[];
  /** Tied input / output embeddings (GPT-2, SmolLM2, small Qwen2). */
  tie?: boolean;
}

/** Model shapes users bring, by name (randomly initialised: the shapes are what costs time and memory). */
export const PRESETS: Record<string, Omit<BenchShape, 'batch' | 'seq' | 'r'>> = {
  tiny: { arch: 'gpt2', layers: 4, d: 256, heads: 4, vocab: 8192, targets: ['c_attn'] },
  'gpt2-124m': { arch: 'gpt2', layers: 12, d: 768, heads: 12, vocab: 50257, targets: ['c_attn'] },
  'smollm2-135m': { arch: 'llama', layers: 30, d: 576, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152, tie: true, targets: ['q_proj', 'v_proj'] },
  'qwen2.5-0.5b': { arch: 'llama', layers: 24, d: 896, heads: 14, kvHeads: 2, ffn: 4864, vocab: 151936, tie: true, targets: ['q_proj', 'v_proj'] },
};

/** config.json for a bench shape (dropout off, as the tfjs and PyTorch figures compare like with like). */
export function benchConfig(s: BenchShape): Record<string, unknown> {
  if (s.arch === 'gpt2') {
    return {
      model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: s.vocab, n_embd: s.d, n_layer: s.layers, n_head: s.heads,
      n_inner: s.ffn ?? null, n_positions: Math.max(1024, s.seq), attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0,
    };
  }
  return {
    model_type: s.arch === 'llama' && s.vocab === 151936 ? 'qwen2' : 'llama', architectures: ['LlamaForCausalLM'],
    vocab_size: s.vocab, hidden_size: s.d, num_hidden_layers: s.layers, num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads ?? s.heads, intermediate_size: s.ffn ?? 4 * s.d, max_position_embeddings: Math.max(2048, s.seq),
    tie_word_embeddings: s.tie ?? false, rms_norm_eps: 1e-5,
  };
}

/**
 * Matrix-product FLOPs of one LoRA training step, the usual convention for model FLOPs (elementwise work is
 * not counted): per token and layer the forward does 2 * (frozen weights) + 4 * S * d for attention; the
 * backward computes input gradients only for frozen weights (the same 2 * weights) and 8 * S * d for
 * attention; LoRA's A / B cost 2 * r * (in + out) forward and three times that backward; the LM head 2 * V * d
 * forward and again for its input gradient. Gradient checkpointing adds one more forward of every block.
 */
export function trainingFlops(s: BenchShape, checkpointing: boolean, loraDims: { in: number; out: number }[]): number {
  const T = s.batch * s.seq;
  const d = s.d;
  const kv = ((s.kvHeads ?? s.heads) / s.heads) * d;
  const ffn = s.ffn ?? 4 * d;
  const layerWeights = s.arch === 'gpt2' ? 4 * d * d + 2 * d * ffn : 2 * d * d + 2 * d * kv + 3 * d * ffn;
  const attnFwd = 4 * s.seq * d; // q k^T and p v, per token
  const layerFwd = T * (2 * layerWeights + attnFwd);
  const layerBwd = T * (2 * layerWeights + 2 * attnFwd);
  const lora = loraDims.reduce((n, m) => n + 2 * T * s.r * (m.in + m.out), 0);
  const head = 2 * T * s.vocab * d;
  return s.layers * (layerFwd + layerBwd + (checkpointing ? layerFwd : 0)) + 4 * lora + 2 * head;
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;

export interface BenchOptions {
  steps: number;
  checkpointing: boolean;
  /** Measure memory with tf.profile on the first (warm-up) step. */
  profileMemory?: boolean;
}

function tensorBytes(ts: Iterable<tf.Tensor>): number {
  const seen = new Set<object>();
  let n = 0;
  for (const t of ts) {
    if (seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    n += t.size * 4;
  }
  return n;
}

/**
 * tf.profile(fn), failing with fn's own error. Under tf.profile a kernel runs inside the backend's async
 * time(): a kernel that throws (say OUT_OF_MEMORY) becomes an unhandled rejection, which ends a Node process,
 * while tfjs goes on to read the missing outputs (a TypeError). Here the first kernel error is kept, time()
 * resolves, and that error is thrown once the profile has closed.
 */
async function profileStep(fn: () => Promise<void>): Promise<Awaited<ReturnType<typeof tf.profile>>> {
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<unknown> };
  const time = backend.time;
  let failure: unknown = null;
  backend.time = (f) => time.call(backend, () => {
    try {
      f();
    } catch (e) {
      failure ??= e;
    }
  });
  let prof: Awaited<ReturnType<typeof tf.profile>>;
  try {
    prof = await tf.profile(async () => {
      try {
        await fn();
      } catch (e) {
        failure ??= e;
      }
    });
  } finally {
    backend.time = time;
  }
  if (failure) throw failure;
  return prof;
}

/** One LoRA training benchmark on the active backend. */
export async function benchTraining(s: BenchShape, o: BenchOptions) {
  const config = benchConfig(s);
  const model: Model = buildModel(config, new Map(), { initMissing: 'all', task: 'CAUSAL_LM', seed: 0 });
  const peft = createPeftModel(model, loraConfig({ taskType: 'CAUSAL_LM', r: s.r, loraAlpha: 2 * s.r, targetModules: s.targets }), 0);
  const opt = new AdamW({ weightDecay: 0 });
  const rng = new Rng(1);
  const rows: Encoded[] = Array.from({ length: s.batch }, () => {
    const ids = Array.from({ length: s.seq }, () => Math.floor(rng.next() * s.vocab));
    return { ids, labels: ids.slice() };
  });
  const batch = collate(rows, 'CAUSAL_LM', 0);
  const trainable = peftTrainable(peft, { checkpoint: o.checkpointing });
  const weightsBytes = tensorBytes(model.params.values());
  const times: number[] = [];
  const losses: number[] = [];
  let memory: Record<string, number> | null = null;
  const previous = setPackPolicy('marked');
  try {
    for (let i = 0; i <= o.steps; i++) {
      const t0 = performance.now();
      if (i === 0 && o.profileMemory) {
        // Tensor bytes per phase: exact buffers on wasm (tensorHeap), tfjs's handle count elsewhere.
        const wasm = tf.getBackend() === 'wasm';
        const live = () => (wasm ? tensorHeap.live : tf.memory().numBytes);
        const phases: { start: number; peak: number }[] = [];
        let current = { start: live(), peak: live() };
        const sample = () => (current.peak = Math.max(current.peak, wasm ? tensorHeap.peak : tf.memory().numBytes));
        const next = () => {
          sample();
          phases.push(current);
          current = { start: live(), peak: live() };
          tensorHeap.resetPeak();
        };
        tensorHeap.resetPeak();
        onLmHeadPhase(next);
        let res: Awaited<ReturnType<typeof optimizerStep>> | null = null;
        const prof = await profileStep(async () => {
          res = await optimizerStep(trainable, opt, [batch], 1e-3, 1);
        });
        onLmHeadPhase(null);
        next();
        losses.push(res!.loss);
        const stateBytes = tensorBytes(peft.trainableVariables()) + opt.stateBytes();
        const base = weightsBytes + stateBytes;
        // phases: [forward up to the LM head, LM head, backward] (just one when the head is not fused)
        const lm = phases.length === 3 ? phases[1] : null;
        const others = phases.length === 3 ? [phases[0], phases[2]] : phases;
        memory = {
          tf_peak_bytes: prof.peakBytes,
          tensor_peak_bytes: Math.max(...phases.map((p) => p.peak)),
          weights_bytes: weightsBytes,
          adapter_optimizer_bytes: stateBytes,
          activations_bytes: Math.max(0, Math.max(...others.map((p) => p.peak)) - base),
          lm_head_bytes: lm ? Math.max(0, lm.peak - lm.start) : 0,
        };
      } else {
        const res = await optimizerStep(trainable, opt, [batch], 1e-3, 1); // reads the loss back: the step is done
        losses.push(res.loss);
        if (i > 0) times.push(performance.now() - t0);
      }
    }
    const ms = times.length ? median(times) : NaN;
    const dims = [...(peft as unknown as { layers: Map<string, { spec: { inFeatures: number; outFeatures: number } }> }).layers.values()]
      .map((l) => ({ in: l.spec.inFeatures, out: l.spec.outFeatures }));
    const flops = trainingFlops(s, o.checkpointing, dims);
    return {
      params: countParams(model.modules, model.tied),
      trainable_params: peft.trainableVariables().reduce((n, v) => n + v.size, 0),
      gradient_checkpointing: o.checkpointing,
      ms_per_step: times.length ? r2(ms) : null,
      step_ms: times.map(r2),
      tokens_per_sec: times.length ? r2(((s.batch * s.seq) / ms) * 1000) : null,
      step_gflops: times.length ? r2(flops / (ms * 1e6)) : null,
      flops_per_step: flops,
      loss_first: r2(losses[0]),
      /** Unrounded, for comparing backends (bench:browser checks WebGPU against WASM to 1e-3). */
      loss_first_exact: losses[0],
      loss_last: r2(losses[losses.length - 1]),
      ...(memory ?? {}),
      peak_heap_bytes: wasmHeapBytes(),
    };
  } finally {
    setPackPolicy(previous);
    disposeBatch(batch);
    opt.dispose();
    peft.dispose();
    model.dispose();
  }
}

/** 1024 x 1024 x 1024 matmul throughput (2 n^3 FLOPs), the backend's reference rate. */
export async function benchMatmul(runs: number) {
  const n = 1024;
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  const times: number[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      const ms = performance.now() - t0;
      c.dispose();
      if (i > 0) times.push(ms);
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  const ms = median(times);
  return { matmul_ms: r2(ms), matmul_gflops: r2((2 * n ** 3) / (ms * 1e6)) };
}

// ---------------------------------------------------------------------------------------------------------------
// What the backend runs on (bench:browser reports it next to the figures)

/** The parts of WebGPU's types used here (the DOM lib in use may not declare them). */
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuDeviceLike {
  features: { has(f: string): boolean; forEach(f: (v: string) => void): void };
  limits: Record<string, number>;
  adapterInfo?: GpuAdapterInfoLike;
}
interface GpuAdapterLike {
  limits: Record<string, number>;
  requestDevice(d?: { requiredLimits?: Record<string, number> } & Record<string, unknown>): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(o?: Record<string, unknown>): Promise<GpuAdapterLike | null>;
}

const WEBGPU_LIMITS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension',
];

/**
 * The active backend's build and device: wasm SIMD, threads and XNNPACK's thread count; the WebGPU adapter,
 * feature level (core or compatibility), the limits that bound tfjs's kernels and the device's features.
 */
export async function backendDetails(): Promise<Record<string, unknown>> {
  const name = tf.getBackend();
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    let count: number | null = null;
    try {
      count = getThreadsCount(); // XNNPACK's pool size, as the backend started it
    } catch {
      count = null;
    }
    return { simd: !!simd, threads: !!threads, threads_count: count };
  }
  if (name === 'webgpu') {
    const b = tf.backend() as unknown as { device: GpuDeviceLike; adapterInfo?: { vendor?: string; architecture?: string } };
    const info = b.device.adapterInfo ?? b.adapterInfo ?? {};
    const features: string[] = [];
    b.device.features.forEach((f) => features.push(f));
    return {
      adapter: {
        vendor: info.vendor ?? '',
        architecture: info.architecture ?? '',
        device: (info as GpuAdapterInfoLike).device ?? '',
        description: (info as GpuAdapterInfoLike).description ?? '',
        is_fallback_adapter: (info as GpuAdapterInfoLike).isFallbackAdapter ?? null,
      },
      feature_level: b.device.features.has('core-features-and-limits') ? 'core' : 'compatibility',
      limits: Object.fromEntries(WEBGPU_LIMITS.map((k) => [k, b.device.limits[k] ?? null])),
      features: features.sort(),
    };
  }
  return {};
}

/** Backend settings a benchmark may change before the backend starts (bench.html's `benchSetup` command). */
export interface BenchSetup {
  /** WebGPU adapter requests ask for this feature level (see setWebGpuFeatureLevel). */
  webgpuFeatureLevel?: 'core' | 'compatibility';
  /** XNNPACK threads for the threaded wasm build (1-8), see setWasmThreads; only before wasm first starts. */
  wasmThreads?: number;
}

export function benchSetup(o: BenchSetup): void {
  if (o.webgpuFeatureLevel) setWebGpuFeatureLevel(o.webgpuFeatureLevel);
  if (o.wasmThreads !== undefined) setWasmThreads(o.wasmThreads);
}

/**
 * From now on, this thread's WebGPU adapter requests ask for `featureLevel`: tfjs-backend-webgpu requests a
 * core adapter, and some adapters are compatibility-only (Chromium's ANGLE / OpenGL ES one, e.g. on llvmpipe).
 * A device from a compatibility adapter also gets the adapter's storage-buffer count (compatibility's default
 * is lower than what some tfjs kernels bind). Call before the webgpu backend starts; false without WebGPU.
 */
export function setWebGpuFeatureLevel(featureLevel: 'core' | 'compatibility'): boolean {
  const gpu = (globalThis.navigator as unknown as { gpu?: GpuLike & { __peftStudioRequestAdapter?: GpuLike['requestAdapter'] } } | undefined)?.gpu;
  if (!gpu) return false;
  const original = (gpu.__peftStudioRequestAdapter ??= gpu.requestAdapter.bind(gpu));
  if (featureLevel === 'core') {
    gpu.requestAdapter = original;
    return true;
  }
  gpu.requestAdapter = async (o?: Record<string, unknown>) => {
    const adapter = await original({ ...o, featureLevel });
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = (d = {}) => requestDevice({
      ...d,
      requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage, ...d.requiredLimits },
    });
    return adapter;
  };
  return true;
}

/** KV-cached generation on a randomly initialised model of the shape: prefill and ms per new token. */
export async function benchDecoding(s: BenchShape, promptLen: number, newTokens: number) {
  const model = buildModel(benchConfig(s), new Map(), { initMissing: 'all', task: 'CAUSAL_LM', seed: 0 });
  try {
    await benchGeneration(model, Math.min(promptLen, 8), 2); // warm-up: first products, kernel set-up
    const t = await benchGeneration(model, promptLen, newTokens);
    return { prompt_tokens: promptLen, new_tokens: t.tokens, prefill_ms: r2(t.prefill_ms), ms_per_token: r2(t.ms_per_token) };
  } finally {
    model.dispose();
  }
}

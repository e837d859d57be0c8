/**
 * Training memory estimate, shown next to the module tree before any weight is downloaded, and checks against
 * what the device offers (WebGPU buffer limits, device memory, WebAssembly's 4 GB heap, storage quota).
 *
 * The estimate is deliberately simple and errs high; every term is float32 (4 bytes) because the engine
 * computes in float32 whatever the checkpoint's dtype:
 *   weights     = totalParams                                  (frozen base model, converted to F32)
 *   adapter     = trainableParams                              (LoRA A/B, prompt embeddings, saved heads)
 *   optimizer   = 3 × trainableParams                          (gradients + AdamW first and second moments)
 *   activations = L × layer + 4·B·T·C + 3·logits + layer       (kept for backprop; the last `layer` is the
 *                                                               backward pass's transient gradients)
 *     layer   = B·T·(12·C + 3·F) + 2·B·H·T²    per transformer block: norms, q/k/v, attention output,
 *                                              residuals, MLP up/gate/activation (12C + 3F per token) and the
 *                                              attention scores and probabilities (2·H·T per token)
 *     logits  = B·T·V for causal LM (logits, log-softmax and their gradient: ×3), B·labels for classification
 * with B batch, T sequence length, C hidden size, F MLP size, H heads, L layers, V vocabulary.
 */
import { resolveArchitecture } from './models';

export interface MemoryInput {
  totalParams: number;
  trainableParams: number;
  batch: number;
  seqLen: number;
  hidden: number;
  layers: number;
  heads: number;
  vocab: number;
  /** MLP inner size; default 4 × hidden (GPT-2, BERT). */
  ffn?: number;
  /** Elements of the largest parameter; default vocab × hidden (the embedding). */
  largestParamElements?: number;
  /** SEQ_CLS has no B×T×V logits. Default CAUSAL_LM. */
  task?: 'CAUSAL_LM' | 'SEQ_CLS';
  numLabels?: number;
}

export interface MemoryEstimate {
  weightsBytes: number;
  adapterBytes: number;
  optimizerBytes: number;
  activationsBytes: number;
  totalBytes: number;
  /** The biggest single tensor: WebGPU must hold (and bind) it as one buffer. */
  largestBufferBytes: number;
  largestBuffer: 'embedding' | 'logits' | 'attention' | 'mlp';
}

const F32 = 4;

export function estimateTrainingMemory(m: MemoryInput): MemoryEstimate {
  const { batch: B, seqLen: T, hidden: C, layers: L, heads: H, vocab: V } = m;
  const F = m.ffn ?? 4 * C;
  const rows = B * T;
  const layer = rows * (12 * C + 3 * F) + 2 * B * H * T * T;
  const logits = m.task === 'SEQ_CLS' ? B * (m.numLabels ?? 2) : rows * V;
  const activations = L * layer + 4 * rows * C + 3 * logits + layer;
  const candidates: [MemoryEstimate['largestBuffer'], number][] = [
    ['embedding', m.largestParamElements ?? V * C],
    ['logits', logits],
    ['attention', B * H * T * T],
    ['mlp', rows * F],
  ];
  const [largestBuffer, largest] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  const weightsBytes = m.totalParams * F32;
  const adapterBytes = m.trainableParams * F32;
  const optimizerBytes = 3 * m.trainableParams * F32;
  const activationsBytes = activations * F32;
  return {
    weightsBytes, adapterBytes, optimizerBytes, activationsBytes,
    totalBytes: weightsBytes + adapterBytes + optimizerBytes + activationsBytes,
    largestBufferBytes: largest * F32, largestBuffer,
  };
}

/**
 * The same estimate from a config.json (dimensions read by the architecture's own parser) and the counts from
 * the header-first inspection (inspectModel's totalParams and largestParamElements).
 */
export function estimateForConfig(
  config: Record<string, unknown>,
  o: { totalParams: number; trainableParams: number; batch: number; seqLen: number; largestParamElements?: number; task?: 'CAUSAL_LM' | 'SEQ_CLS' },
): MemoryEstimate {
  const r = resolveArchitecture(config, o.task);
  const c = r.config;
  const ffn = [config.intermediate_size, config.n_inner].find((v): v is number => typeof v === 'number' && v > 0);
  return estimateTrainingMemory({
    totalParams: o.totalParams, trainableParams: o.trainableParams, batch: o.batch, seqLen: o.seqLen,
    hidden: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, vocab: c.vocabSize, ffn,
    largestParamElements: o.largestParamElements, task: r.task, numLabels: c.numLabels,
  });
}

export interface DeviceLimits {
  /** WebGPU adapter limits (GPUSupportedLimits); tfjs requests the adapter's maximum. */
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** RAM (navigator.deviceMemory × 2^30 in browsers, os.totalmem() in Node). */
  deviceMemoryBytes?: number;
  /** The backend that will train: wasm has a 4 GB heap. */
  backend?: 'webgpu' | 'wasm' | 'cpu';
  /** Free storage (navigator.storage.estimate quota − usage) and the download size, to warn before downloading. */
  storageAvailableBytes?: number;
  downloadBytes?: number;
}

export interface FitWarning {
  level: 'error' | 'warning';
  code: 'BINDING_TOO_LARGE' | 'BUFFER_TOO_LARGE' | 'WASM_HEAP' | 'DEVICE_MEMORY' | 'STORAGE';
  message: string;
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

const WASM_HEAP = 4 * 2 ** 30;

/** Human warnings, most serious first; empty when everything fits. */
export function checkFits(e: MemoryEstimate, limits: DeviceLimits): FitWarning[] {
  const out: FitWarning[] = [];
  const what = { embedding: 'the largest weight (the embedding matrix)', logits: 'the logits (batch × length × vocabulary)', attention: 'the attention scores (batch × heads × length²)', mlp: 'the MLP activations' }[e.largestBuffer];
  const fix = e.largestBuffer === 'embedding' ? 'pick the wasm or cpu backend, or a smaller model' : 'lower the batch size or the sequence length, or pick the wasm backend';
  const gpu = limits.backend === undefined || limits.backend === 'webgpu';
  if (gpu && limits.maxStorageBufferBindingSize && e.largestBufferBytes > limits.maxStorageBufferBindingSize) {
    out.push({ level: 'error', code: 'BINDING_TOO_LARGE', message: `${what} needs ${formatBytes(e.largestBufferBytes)} in one buffer, more than this GPU can bind (maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)}): ${fix}.` });
  } else if (gpu && limits.maxBufferSize && e.largestBufferBytes > limits.maxBufferSize) {
    out.push({ level: 'error', code: 'BUFFER_TOO_LARGE', message: `${what} needs ${formatBytes(e.largestBufferBytes)} in one buffer, more than this GPU allows (maxBufferSize ${formatBytes(limits.maxBufferSize)}): ${fix}.` });
  }
  if (limits.backend === 'wasm' && e.totalBytes > WASM_HEAP) {
    out.push({ level: 'error', code: 'WASM_HEAP', message: `Training needs about ${formatBytes(e.totalBytes)}, but the wasm backend can address at most 4.3 GB: use WebGPU, or a smaller model, batch or length.` });
  }
  if (limits.deviceMemoryBytes) {
    if (e.totalBytes > limits.deviceMemoryBytes) {
      out.push({ level: 'warning', code: 'DEVICE_MEMORY', message: `Training needs about ${formatBytes(e.totalBytes)}, more than this device's ${formatBytes(limits.deviceMemoryBytes)} of memory: it will probably run out of memory. Lower the batch size or sequence length, or pick a smaller model.` });
    } else if (e.totalBytes > 0.7 * limits.deviceMemoryBytes) {
      out.push({ level: 'warning', code: 'DEVICE_MEMORY', message: `Training needs about ${formatBytes(e.totalBytes)} of this device's ${formatBytes(limits.deviceMemoryBytes)}: it may run out of memory with other tabs open.` });
    }
  }
  if (limits.storageAvailableBytes !== undefined && limits.downloadBytes !== undefined && limits.downloadBytes > limits.storageAvailableBytes) {
    out.push({ level: 'warning', code: 'STORAGE', message: `The download is ${formatBytes(limits.downloadBytes)} but only ${formatBytes(limits.storageAvailableBytes)} of storage is free: it will not be cached. Delete cached models to make room.` });
  }
  return out.sort((a, b) => (a.level === b.level ? 0 : a.level === 'error' ? -1 : 1));
}

/** WebGPU adapter limits, or null where WebGPU is unavailable (Node, older browsers). Feature-detected. */
export async function gpuLimits(): Promise<{ maxBufferSize: number; maxStorageBufferBindingSize: number } | null> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<{ limits: Record<string, number> } | null> } } }).navigator?.gpu;
  if (!gpu) return null;
  try {
    const a = await gpu.requestAdapter();
    return a ? { maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize } : null;
  } catch {
    return null;
  }
}

/** navigator.deviceMemory in bytes (browsers round it and cap it at 8 GB), or null. */
export function browserDeviceMemory(): number | null {
  const gb = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  return typeof gb === 'number' && gb > 0 ? gb * 2 ** 30 : null;
}

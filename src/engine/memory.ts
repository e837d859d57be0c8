/**
 * Training memory estimate, shown next to the module tree before any weight is downloaded, and checks against
 * what the device offers (WebGPU buffer limits, device memory, WebAssembly's 4 GB heap, storage quota).
 *
 * It models what this engine keeps (everything float32, 4 bytes), phase by phase, and predicts the peak of the
 * wasm heap that `npm run bench` measures (test/memory-estimate.test.ts holds the estimate within 25% of the
 * measured peaks in docs/bench/memory-grid.json):
 *   weights      = totalParams                                     (frozen base model)
 *   adapter      = trainableParams; optimizer = 3 x trainable      (gradient + AdamW's two moments)
 *   per token and layer, what the backward pass needs from the forward (floats):
 *     saved = 8 C + 2 F + H T                GPT-2 / BERT (norm inputs, projections' inputs, q k v, the MLP's
 *                                            two F-wide inputs, the attention probabilities)
 *     saved = 6 C + 2 kv + 3 F + H T         LLaMA family (SwiGLU saves gate and up, grouped k / v)
 *           + H T + 2 C with dropout        (the masks)
 *   activations  = N (L saved + work)                 without checkpointing
 *                = N (L C + saved + work)             with it (each block keeps its input; one is recomputed;
 *                                                     blocks a model does not checkpoint keep `saved`)
 *     work = the backward pass's temporaries of one block, about WORK_F x F floats per token
 *   LM head      = N (LM_COLS x min(V, 2048) + LM_C x C)  the streamed cross-entropy's slices (CAUSAL_LM)
 *   peak         = weights + adapter + optimizer + max(activations, saved part + LM head), plus the heap's
 *                  growth slack (heapFor)
 * with N = batch x length tokens, C hidden, F MLP width, H heads, kv the key/value width, T length, L blocks
 * (the layers, or the architecture's memoryBlocks: T5 counts its encoder and decoder, a decoder block as 4/3).
 */
import { resolveArchitecture } from './models';
import type { TaskType } from './models/types';

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
  /** Key/value heads (grouped-query attention); default heads. */
  kvHeads?: number;
  /** 'gated' for SwiGLU MLPs (the LLaMA family: gate, up, down); default 'plain' (two matrices: GPT-2, BERT, OPT). */
  mlp?: 'plain' | 'gated';
  /** Dropout active in training (the masks are kept for the backward pass). */
  dropout?: boolean;
  /** Recompute each block in the backward pass (TrainingArguments.gradient_checkpointing). */
  gradientCheckpointing?: boolean;
  /** Of `layers`, the blocks that keep all their activations even with checkpointing (T5's decoder); default 0. */
  uncheckpointedLayers?: number;
  /** Elements of the largest parameter; default vocab × hidden (the embedding). */
  largestParamElements?: number;
  /** SEQ_CLS has no B×T×V logits. Default CAUSAL_LM. */
  task?: TaskType;
  numLabels?: number;
}

export interface MemoryEstimate {
  weightsBytes: number;
  adapterBytes: number;
  optimizerBytes: number;
  /** Kept for the backward pass plus its temporaries (the larger of the block and LM-head phases, minus nothing). */
  activationsBytes: number;
  /** The fused LM-head loss's working set (0 for classification). */
  lmHeadBytes: number;
  /** Predicted peak of the memory the backend uses (the wasm heap). */
  totalBytes: number;
  gradientCheckpointing: boolean;
  /** The peak with gradient checkpointing on (equal to totalBytes when it is on). */
  withCheckpointingBytes: number;
  /** The biggest single tensor: WebGPU must hold (and bind) it as one buffer. */
  largestBufferBytes: number;
  largestBuffer: 'embedding' | 'logits' | 'attention' | 'mlp';
}

const F32 = 4;
/**
 * Backward temporaries of one block, in units of F per token, calibrated on the bench's grid (GPT-2 124M with
 * checkpointing: 23k floats per token beyond the checkpoints and one block's saved activations, 7.5 x 3072).
 */
export const WORK_F = 7.5;
/** LM-head working set per token: LM_COLS x (vocabulary slice) + LM_C x hidden, plus two slices of the weight. */
export const LM_COLS = 3;
export const LM_C = 6;
/**
 * The heap above the tensors' peak: emscripten grows WebAssembly memory by 20% at a time, capped at 96 MB past
 * the request, and starts from a few MB of its own.
 */
export function heapFor(tensorBytes: number): number {
  return tensorBytes + Math.min(0.25 * tensorBytes, 96e6) + 8e6;
}

/** Columns of the vocabulary the streamed loss takes at a time (ops/cross-entropy.ts). */
function lmColumns(vocab: number, tokens: number): number {
  return Math.min(vocab, 2048, Math.max(256, Math.floor((4 * 2 ** 20) / tokens)));
}

/** Floats per token and layer that the backward pass needs from the forward. */
export function savedPerToken(m: MemoryInput): number {
  const C = m.hidden;
  const F = m.ffn ?? 4 * C;
  const attn = m.heads * m.seqLen;
  const kv = ((m.kvHeads ?? m.heads) / m.heads) * C;
  const base = m.mlp === 'gated' ? 6 * C + 2 * kv + 3 * F + attn : 8 * C + 2 * F + attn;
  return base + (m.dropout ? attn + 2 * C : 0);
}

export function estimateTrainingMemory(m: MemoryInput): MemoryEstimate {
  const e = estimateOnce(m);
  return { ...e, withCheckpointingBytes: m.gradientCheckpointing ? e.totalBytes : estimateOnce({ ...m, gradientCheckpointing: true }).totalBytes };
}

function estimateOnce(m: MemoryInput): Omit<MemoryEstimate, 'withCheckpointingBytes'> {
  const { batch: B, seqLen: T, hidden: C, layers: L, heads: H, vocab: V } = m;
  const F = m.ffn ?? 4 * C;
  const N = B * T;
  const ckpt = !!m.gradientCheckpointing;
  const saved = savedPerToken(m);
  const work = WORK_F * Math.max(F, H * T);
  const U = ckpt ? Math.min(L, m.uncheckpointedLayers ?? 0) : 0;
  const kept = ckpt ? (L - U) * C + U * saved : L * saved; // what the forward leaves for the backward
  const activations = N * (kept + (ckpt ? saved : 0) + work) * F32;
  const cols = lmColumns(V, N);
  const lmHead = m.task === 'SEQ_CLS' ? 0 : (N * (LM_COLS * cols + LM_C * C) + 2 * cols * C) * F32;
  const weightsBytes = m.totalParams * F32;
  const adapterBytes = m.trainableParams * F32;
  const optimizerBytes = 3 * m.trainableParams * F32;
  const phase = Math.max(activations, N * kept * F32 + lmHead);
  const logits = m.task === 'SEQ_CLS' ? B * (m.numLabels ?? 2) : N * cols;
  const candidates: [MemoryEstimate['largestBuffer'], number][] = [
    ['embedding', m.largestParamElements ?? V * C],
    ['logits', logits],
    ['attention', B * H * T * T],
    ['mlp', N * F],
  ];
  const [largestBuffer, largest] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    weightsBytes, adapterBytes, optimizerBytes, activationsBytes: activations, lmHeadBytes: lmHead,
    totalBytes: Math.round(heapFor(weightsBytes + adapterBytes + optimizerBytes + phase)),
    gradientCheckpointing: ckpt, largestBufferBytes: largest * F32, largestBuffer,
  };
}

/**
 * The same estimate from a config.json (dimensions read by the architecture's own parser) and the counts from
 * the header-first inspection (inspectModel's totalParams and largestParamElements).
 */
export function estimateForConfig(
  config: Record<string, unknown>,
  o: {
    totalParams: number; trainableParams: number; batch: number; seqLen: number; largestParamElements?: number;
    task?: TaskType; gradientCheckpointing?: boolean; dropout?: boolean;
  },
): MemoryEstimate {
  const r = resolveArchitecture(config, o.task);
  const c = r.config as typeof r.config & { numKvHeads?: number; attnPdrop?: number; residPdrop?: number; hiddenDropout?: number; attnDropout?: number; attentionDropout?: number };
  const blocks = r.spec.memoryBlocks?.(r.config);
  const dropout = o.dropout ?? [c.attnPdrop, c.residPdrop, c.hiddenDropout, c.attnDropout, c.attentionDropout].some((p) => (p ?? 0) > 0);
  return estimateTrainingMemory({
    totalParams: o.totalParams, trainableParams: o.trainableParams, batch: o.batch, seqLen: o.seqLen,
    hidden: c.hiddenSize, layers: blocks?.blocks ?? c.numLayers, uncheckpointedLayers: blocks?.uncheckpointed, heads: c.numHeads, kvHeads: c.numKvHeads, vocab: c.vocabSize,
    ffn: r.spec.ffnSize(r.config), mlp: typeof r.spec.mlpKind === 'function' ? r.spec.mlpKind(r.config) : r.spec.mlpKind, dropout,
    gradientCheckpointing: o.gradientCheckpointing, largestParamElements: o.largestParamElements, task: r.task, numLabels: c.numLabels,
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
/**
 * What a training run on wasm should stay under by default: browsers refuse or kill tabs well before the
 * 4 GiB the format allows on machines with little memory, so the studio turns gradient checkpointing on past
 * this (autoCheckpointing) and warns past it.
 */
export const WASM_COMFORT = 1.5e9;

/**
 * Whether to turn gradient checkpointing on ("auto"): when the run would not stay under the backend's comfort
 * budget without it (wasm: WASM_COMFORT; WebGPU and cpu: half the device memory, 2 GiB when unknown).
 */
export function autoCheckpointing(withoutCheckpointing: MemoryEstimate, limits: DeviceLimits): boolean {
  const budget = limits.backend === 'wasm' || limits.backend === undefined
    ? Math.min(WASM_COMFORT, limits.deviceMemoryBytes ? limits.deviceMemoryBytes / 2 : Infinity)
    : (limits.deviceMemoryBytes ?? 4 * 2 ** 30) / 2;
  return withoutCheckpointing.totalBytes > budget;
}

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
  const ckpt = !e.gradientCheckpointing && e.withCheckpointingBytes < e.totalBytes
    ? `turn on gradient checkpointing (about ${formatBytes(e.withCheckpointingBytes)}), ` : '';
  if (limits.backend === 'wasm' && e.totalBytes > WASM_HEAP) {
    out.push({ level: 'error', code: 'WASM_HEAP', message: `Training needs about ${formatBytes(e.totalBytes)}, but the wasm backend can address at most 4.3 GB: ${ckpt}lower the batch size or sequence length, target fewer modules, use WebGPU, or pick a smaller model.` });
  } else if (limits.backend === 'wasm' && e.totalBytes > WASM_COMFORT) {
    out.push({ level: 'warning', code: 'WASM_HEAP', message: `Training needs about ${formatBytes(e.totalBytes)} of wasm memory, more than ${formatBytes(WASM_COMFORT)}: a browser may refuse it on a machine with little memory. To be safe, ${ckpt || 'lower '}${ckpt ? 'or lower ' : ''}the batch size or sequence length.` });
  }
  if (limits.deviceMemoryBytes) {
    if (e.totalBytes > limits.deviceMemoryBytes) {
      out.push({ level: 'warning', code: 'DEVICE_MEMORY', message: `Training needs about ${formatBytes(e.totalBytes)}, more than this device's ${formatBytes(limits.deviceMemoryBytes)} of memory: it will probably run out of memory. ${ckpt ? `Turn on gradient checkpointing (about ${formatBytes(e.withCheckpointingBytes)}), lower` : 'Lower'} the batch size or sequence length, or pick a smaller model.` });
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

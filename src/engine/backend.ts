/** Backend selection for tfjs, shared by the worker and Node. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { EngineError } from './errors';
import { guardWasmAllocations } from './wasm-heap';
import { installFastWasmMatMul, installFastWasmSlice, installSharedWasmIdentity } from './wasm-matmul';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/**
 * XNNPACK threads the threaded wasm build should use on a machine with `cores` logical cores. tfjs's own
 * default is half of them (one per physical core on SMT machines); on small machines that leaves cores idle
 * while the page waits: GPT-2 124M LoRA, batch 8 x 128, in Chromium on 2 cores ran 47 tokens/s on 1 thread
 * and 78 tokens/s on 2 (npm run bench:browser -- --preset gpt2-124m --batch 8 --seq 128 --backends wasm
 * [--wasm-threads 2]). So: every core up to 4, half of them beyond (at least 4), at most 8.
 */
export function defaultWasmThreads(cores: number): number {
  const n = Math.max(1, Math.floor(cores) || 1);
  return Math.min(8, n <= 4 ? n : Math.max(4, Math.floor(n / 2)));
}

let wasmThreadsAsked: number | null = null;
let logicalCores: number | null = null;

/**
 * Asks the threaded wasm build for `n` XNNPACK threads (1-8); returns the count asked. tfjs-backend-wasm 4.22
 * caps its pool at half of navigator.hardwareConcurrency whatever setThreadsCount asks, so this thread's
 * hardwareConcurrency is raised to 2n first (the real figure stays readable with logicalCoreCount()). Takes
 * effect only before wasm first starts in this thread.
 */
export function setWasmThreads(n: number): number {
  const count = Math.max(1, Math.min(8, Math.floor(n) || 1));
  const nav = globalThis.navigator as { hardwareConcurrency?: number } | undefined;
  logicalCores ??= nav?.hardwareConcurrency || 1;
  if (nav && (nav.hardwareConcurrency ?? 1) < 2 * count) Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * count, configurable: true });
  setThreadsCount(count);
  wasmThreadsAsked = count;
  return count;
}

/** The thread count setWasmThreads asked for, or null when tfjs's default applies. */
export function wasmThreadsRequested(): number | null {
  return wasmThreadsAsked;
}

/** This thread's logical core count, as it was before setWasmThreads raised it. */
export function logicalCoreCount(): number {
  return logicalCores ?? ((globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency || 1);
}

/**
 * Activates a backend. `wasmPaths` is the folder (URL or file path ending in "/") holding the
 * tfjs-backend-wasm .wasm files; in a bundled page it comes from the bundler, in Node from node_modules.
 * On wasm, training-shaped matrix products use installFastWasmMatMul() (about 10x faster) unless
 * `stockWasmKernels` asks for tfjs's own kernels (for comparisons).
 */
export async function useBackend(name: BackendName, opts: { wasmPaths?: string; stockWasmKernels?: boolean } = {}): Promise<BackendName> {
  if (name === 'wasm' && opts.wasmPaths) setWasmPaths(opts.wasmPaths);
  if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  let ok = false;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (e) {
    throw new EngineError('BACKEND', `The ${name} backend could not start: ${(e as Error).message}`);
  }
  if (!ok || tf.getBackend() !== name) throw new EngineError('BACKEND', `The ${name} backend is not available here.`);
  if (name === 'wasm') {
    guardWasmAllocations();
    installSharedWasmIdentity();
    installFastWasmSlice();
  }
  if (name === 'wasm' && !opts.stockWasmKernels) installFastWasmMatMul();
  return name;
}

/** The WebGPU device tfjs runs on (the subset used here), when the webgpu backend is active. */
interface GpuDeviceLike {
  lost: Promise<{ reason?: string; message?: string }>;
  destroy(): void;
}

function webGpuDevice(): GpuDeviceLike | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const b = tf.backend() as unknown as { device?: GpuDeviceLike };
  return b.device && typeof b.device.destroy === 'function' ? b.device : null;
}

/**
 * Calls `cb` once if the active WebGPU device is lost (driver reset, GPU removed, the browser reclaiming it).
 * After that, every tensor on it is gone and each kernel fails: the run has to continue on another backend from
 * a checkpoint. Returns false when the backend is not WebGPU.
 */
export function onWebGpuDeviceLost(cb: (message: string) => void): boolean {
  const d = webGpuDevice();
  if (!d) return false;
  lostCallback = cb;
  if (!watched.has(d)) {
    watched.add(d);
    void d.lost.then((info) => lostCallback?.(`The WebGPU device was lost (${info.reason ?? 'unknown reason'}${info.message ? `: ${info.message}` : ''})`));
  }
  return true;
}
/** One watch per device (tfjs keeps its backend, and so its device, across switches); the newest callback is told. */
const watched = new WeakSet<GpuDeviceLike>();
let lostCallback: ((message: string) => void) | null = null;

/** Destroys the WebGPU device, as a driver reset would (a diagnostics setting; how device loss is tested). */
export function loseWebGpuDevice(): boolean {
  const d = webGpuDevice();
  d?.destroy();
  return !!d;
}

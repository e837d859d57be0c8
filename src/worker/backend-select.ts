/**
 * Picks the tfjs backend for this browser and says why, in words the Training panel shows.
 * auto: WebGPU on a real (non-fallback) adapter, else WASM (SIMD, threaded when the page is cross-origin
 * isolated), else the plain-JS CPU backend. A software WebGPU adapter (SwiftShader) is slower than WASM,
 * so auto skips it; choosing WebGPU explicitly still uses it.
 */
import { defaultWasmThreads, logicalCoreCount, setWasmThreads, useBackend, wasmThreadsRequested } from '../engine/backend';
import { describeError } from '../engine/errors';
import type { BackendChoice, BackendName } from './protocol';

/** The subset of WebGPU's types used here (the DOM lib in use may not declare navigator.gpu). */
interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; description?: string };
}
interface GpuLike {
  requestAdapter(opts?: Record<string, unknown>): Promise<GpuAdapterLike | null>;
}

export interface BackendDecision {
  backend: BackendName;
  reason: string;
}

/** Describes the WebGPU adapter the browser offers, or why there is none. */
export async function probeWebGpu(): Promise<{ ok: boolean; fallback: boolean; text: string }> {
  const gpu = (self.navigator as unknown as { gpu?: GpuLike }).gpu;
  if (!gpu) return { ok: false, fallback: false, text: 'this browser does not expose WebGPU (navigator.gpu is missing)' };
  let adapter: GpuAdapterLike | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { ok: false, fallback: false, text: `WebGPU adapter request failed: ${describeError(e)}` };
  }
  if (!adapter) return { ok: false, fallback: false, text: 'no WebGPU adapter is available' };
  const fallback = !!(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const name = [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ') || 'unnamed adapter';
  return { ok: true, fallback, text: fallback ? `the only WebGPU adapter is a software fallback (${name})` : `WebGPU adapter: ${name}` };
}

/** Whether this engine validates a WebAssembly module using a SIMD instruction (i8x16.splat). */
function wasmSimd(): boolean {
  try {
    return WebAssembly.validate(
      new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]),
    );
  } catch {
    return false;
  }
}

function wasmDetails(): string {
  const simd = wasmSimd();
  const threads = typeof SharedArrayBuffer !== 'undefined' && self.crossOriginIsolated === true;
  const cores = logicalCoreCount();
  const n = wasmThreadsRequested() ?? Math.max(1, Math.floor(cores / 2));
  return [
    simd ? 'SIMD' : 'no SIMD',
    threads
      ? `multi-threaded (${n} thread${n === 1 ? '' : 's'} on ${cores} core${cores === 1 ? '' : 's'}; the page is cross-origin isolated)`
      : 'single-threaded (the page is not cross-origin isolated)',
  ].join(', ');
}

/**
 * Activates a backend following `choice`; an explicit choice that fails falls back to auto, and the reason
 * says so. `wasmPaths` is the folder holding the tfjs-backend-wasm binaries. On a cross-origin isolated page
 * the threaded wasm build gets `wasmThreads` threads (default defaultWasmThreads(cores)) unless a count was
 * already asked for; the count is fixed when wasm first starts.
 */
export async function selectBackend(choice: BackendChoice, wasmPaths: string, wasmThreads?: number): Promise<BackendDecision> {
  if (self.crossOriginIsolated === true && (wasmThreads !== undefined || wasmThreadsRequested() === null)) {
    setWasmThreads(wasmThreads ?? defaultWasmThreads(logicalCoreCount()));
  }
  const failures: string[] = [];
  const attempt = async (name: BackendName, why: string): Promise<BackendDecision | null> => {
    try {
      await useBackend(name, { wasmPaths });
      return { backend: name, reason: [...failures, why].join('; ') };
    } catch (e) {
      failures.push(`${name} failed to start: ${describeError(e)}`);
      return null;
    }
  };

  if (choice === 'webgpu') {
    const probe = await probeWebGpu();
    const r = probe.ok ? await attempt('webgpu', `WebGPU chosen; ${probe.text}`) : (failures.push(`WebGPU unavailable: ${probe.text}`), null);
    if (r) return r;
  }
  if (choice === 'wasm') {
    const r = await attempt('wasm', `WASM chosen: ${wasmDetails()}`);
    if (r) return r;
  }
  if (choice === 'cpu') {
    const r = await attempt('cpu', 'CPU chosen: plain JavaScript kernels (slowest, for checking results)');
    if (r) return r;
  }

  // auto, or the explicit choice failed
  const probe = await probeWebGpu();
  if (probe.ok && !probe.fallback && choice !== 'webgpu') {
    const r = await attempt('webgpu', `auto: ${probe.text}`);
    if (r) return r;
  }
  const gpuNote = probe.ok && probe.fallback ? `auto: ${probe.text}, slower than WASM; ` : probe.ok ? 'auto: ' : `auto: ${probe.text}; `;
  const r = await attempt('wasm', `${gpuNote}using WASM, ${wasmDetails()}`);
  if (r) return r;
  const c = await attempt('cpu', 'auto: WebGPU and WASM are unavailable, using the plain-JavaScript CPU backend');
  if (c) return c;
  throw new Error(`No tfjs backend could start: ${failures.join('; ')}`);
}

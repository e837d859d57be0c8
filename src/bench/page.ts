/**
 * bench.html: no UI, only `window.peftBench(backend, shape, opts)` for automation (`npm run bench:browser`,
 * e2e/bench-page.spec.ts). It starts the studio's own worker through the studio's WorkerClient, sends `init`
 * for the backend and then `bench`, and resolves with the worker's result and the page's context.
 *
 * One worker per page: the wasm heap only grows, so measure each backend in a fresh page.
 */
import type { BenchShape } from '../engine/bench';
import { WorkerClient } from '../state/worker-client';
import type { BenchResult, WorkerEvent } from '../worker/protocol';

export interface PeftBenchOptions {
  /** Timed steps after the warm-up step (default 3). */
  steps?: number;
  checkpointing?: boolean;
  /** Timed 1024^3 matmuls after a warm-up (default 5). */
  matmulRuns?: number;
  /** Ask for a compatibility-level WebGPU adapter (Chromium's ANGLE / OpenGL ES adapter is one). */
  webgpuFeatureLevel?: 'core' | 'compatibility';
  /** XNNPACK threads for the threaded wasm build (default: the studio's, see defaultWasmThreads). */
  wasmThreads?: number;
}

export interface PeftBenchReply {
  /** The backend the worker started and why (backend-select's words). */
  backend: string;
  reason: string;
  page: { crossOriginIsolated: boolean; sharedArrayBuffer: boolean; hardwareConcurrency: number; userAgent: string };
  result: BenchResult;
}

declare global {
  interface Window {
    peftBench(backend: 'wasm' | 'webgpu', shape: BenchShape, opts?: PeftBenchOptions): Promise<PeftBenchReply>;
    peftBenchReady?: boolean;
  }
}

const status = document.getElementById('status');
const show = (text: string) => {
  if (status) status.textContent = text;
};

let client: WorkerClient | null = null;
/** Rejects when the worker reports an error no request owns (a crash, an uncaught rejection). */
let crashed: ((e: Error) => void) | null = null;

function workerClient(): WorkerClient {
  if (client) return client;
  client = new WorkerClient();
  client.on((e: WorkerEvent) => {
    if (e.type === 'log') console.log(`[worker] ${e.message}`);
    if (e.type === 'error' && e.requestId === undefined) {
      console.error(`[worker] ${e.code}: ${e.message}`);
      crashed?.(new Error(`${e.code}: ${e.message}`));
    }
  });
  return client;
}

async function peftBench(backend: 'wasm' | 'webgpu', shape: BenchShape, opts: PeftBenchOptions = {}): Promise<PeftBenchReply> {
  const w = workerClient();
  const crash = new Promise<never>((_, reject) => (crashed = reject));
  try {
    if (opts.webgpuFeatureLevel || opts.wasmThreads) w.send({ type: 'benchSetup', setup: { webgpuFeatureLevel: opts.webgpuFeatureLevel, wasmThreads: opts.wasmThreads } });
    show(`starting ${backend}`);
    const baseUrl = new URL(import.meta.env.BASE_URL, window.location.href).href;
    const ready = await Promise.race([w.request({ type: 'init', backend, baseUrl }, 'ready'), crash]);
    // An explicit choice that fails falls back to auto: a figure for another backend is no answer.
    if (ready.backend !== backend) throw new Error(`${backend} did not start (the worker fell back to ${ready.backend}): ${ready.reason}`);
    show(`benchmarking on ${backend}`);
    const reply = await Promise.race([
      w.request({ type: 'bench', shape, steps: opts.steps ?? 3, checkpointing: opts.checkpointing ?? false, matmulRuns: opts.matmulRuns ?? 5 }, 'benchResult'),
      crash,
    ]);
    show(`done on ${backend}`);
    return {
      backend: ready.backend,
      reason: ready.reason,
      page: {
        crossOriginIsolated: self.crossOriginIsolated === true,
        sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
        hardwareConcurrency: navigator.hardwareConcurrency || 1,
        userAgent: navigator.userAgent,
      },
      result: reply.result,
    };
  } catch (e) {
    show(`failed on ${backend}: ${(e as Error).message}`);
    throw e;
  } finally {
    crashed = null;
    crash.catch(() => undefined);
  }
}

window.peftBench = peftBench;
window.peftBenchReady = true;
show('ready');

/** Backend selection for tfjs, shared by the worker and Node. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { EngineError } from './errors';
import { guardWasmAllocations } from './wasm-heap';
import { installFastWasmMatMul, installFastWasmSlice, installSharedWasmIdentity } from './wasm-matmul';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';

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

/** Node-only: starts a tfjs backend with the wasm binaries from node_modules. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { useBackend, type BackendName } from '../backend';

export function nodeWasmPaths(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  return path.join(path.dirname(main), path.sep);
}

export async function useNodeBackend(name: Exclude<BackendName, 'webgpu'>, opts: { stockWasmKernels?: boolean } = {}): Promise<BackendName> {
  return useBackend(name, { ...opts, wasmPaths: nodeWasmPaths() });
}

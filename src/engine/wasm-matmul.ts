/**
 * A faster BatchMatMul for the tfjs wasm backend, installed whenever the engine starts that backend (backend.ts).
 *
 * Measured with tfjs-backend-wasm 4.22 in Node (single-threaded, SIMD), BatchMatMul is fast (XNNPACK speed) only in
 * the plain case: no transposed operand and a batch of 1. Every other case is 10-40x slower (2-D [512,1024]x[1024,256]:
 * 41 GFLOP/s plain, 0.95 GFLOP/s with transposeA, 3.3 with transposeB; batched attention-sized products ~3 GFLOP/s,
 * the same products one 2-D slice at a time ~33 GFLOP/s). Training needs exactly the slow cases: the gradient of
 * every weight is a transposeA product, the gradient of every input a transposeB one, tied lm_head and q·kᵀ are
 * transposeB in the forward, and attention is batched.
 *
 * installFastWasmMatMul() re-registers the wasm BatchMatMul kernel so that it (1) materialises transposed operands
 * with the wasm Transpose kernel (cheap: a copy) and (2) runs a batched product as one XNNPACK product per batch
 * entry, copying slices within the wasm heap. Results are the same products (up to float summation order).
 *
 * XNNPACK caches its packed right-hand matrix by tensor id, so every right-hand slice gets a fresh tensor that is
 * disposed right after (which drops the cache entry); a slice buffer is never refilled under the same id.
 */
import * as tf from '@tensorflow/tfjs';

interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(dataId: object): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

let installed = false;

/** Replaces the wasm BatchMatMul kernel (once per process / worker). */
export function installFastWasmMatMul(): void {
  if (installed) return;
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!orig || !transpose) throw new Error('installFastWasmMatMul: the wasm backend is not registered');
  const run = (cfg: tf.KernelConfig, inputs: Record<string, TensorInfo>, backend: WasmBackend, attrs: Record<string, unknown>) =>
    cfg.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as unknown as TensorInfo;

  const kernelFunc = (args: { inputs: Record<string, TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> }) => {
    const { backend } = args;
    let { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return run(orig, args.inputs, backend, args.attrs);
    const temps: TensorInfo[] = [];
    const swapLast = (x: TensorInfo) => {
      const r = x.shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      const y = run(transpose, { x }, backend, { perm });
      temps.push(y);
      return y;
    };
    try {
      if (transposeA) a = swapLast(a);
      if (transposeB) b = swapLast(b);
      const plain = { transposeA: false, transposeB: false };
      const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const sameBatch = a.shape.length === b.shape.length && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
      if (batchA <= 1 && batchB <= 1) return run(orig, { a, b }, backend, plain);
      if (!sameBatch) return run(orig, { a, b }, backend, plain); // broadcasting: rare, keep the stock kernel
      const [M, K] = a.shape.slice(-2);
      const N = b.shape[b.shape.length - 1];
      const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
      const off = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
      for (let i = 0; i < batchA; i++) {
        const sa = backend.makeOutput([1, M, K], 'float32');
        const sb = backend.makeOutput([1, K, N], 'float32');
        // Offsets are re-read after each allocation: malloc may grow (and move the view of) the heap.
        let heap = backend.wasm.HEAPU8;
        heap.copyWithin(off(sa), off(a) + i * M * K * 4, off(a) + (i + 1) * M * K * 4);
        heap.copyWithin(off(sb), off(b) + i * K * N * 4, off(b) + (i + 1) * K * N * 4);
        const r = run(orig, { a: sa, b: sb }, backend, plain);
        heap = backend.wasm.HEAPU8;
        heap.copyWithin(off(out) + i * M * N * 4, off(r), off(r) + M * N * 4);
        backend.disposeData(r.dataId);
        backend.disposeData(sa.dataId);
        backend.disposeData(sb.dataId);
      }
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  });
  installed = true;
}

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
 *
 * That cache is also a second copy of every weight matrix used as a plain right-hand operand (GPT-2's Conv1D
 * weights in the forward pass: 340 MB at 124M parameters), kept until the weight is disposed. The pack policy
 * decides: 'all' (tfjs's behaviour; right for generation, where one row at a time makes packing per call
 * expensive) or 'marked' (training: only tensors passed to keepPacked() stay packed, any other right-hand
 * operand is copied to a temporary first, so its packed copy is freed after the product; the copy and the
 * repack cost about 3% of a [1024, 768] x [768, 2304] product).
 */
import * as tf from '@tensorflow/tfjs';
import { ensureWasmHeadroom } from './wasm-heap';

export type PackPolicy = 'all' | 'marked';
let policy: PackPolicy = 'all';
const packed = new WeakSet<object>();

/** Which right-hand operands XNNPACK may keep packed between products (see above). */
export function setPackPolicy(p: PackPolicy): PackPolicy {
  const was = policy;
  policy = p;
  return was;
}

/** Lets this tensor's packed form stay cached under the 'marked' policy (e.g. the LM head weight). */
export function keepPacked(t: tf.Tensor): void {
  packed.add(t.dataId);
}

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
    const copyOf = (x: TensorInfo) => {
      const y = backend.makeOutput(x.shape, 'float32');
      const n = x.shape.reduce((p, q) => p * q, 1) * 4;
      const heap = backend.wasm.HEAPU8;
      heap.copyWithin(backend.dataIdMap.get(y.dataId).memoryOffset, backend.dataIdMap.get(x.dataId).memoryOffset, backend.dataIdMap.get(x.dataId).memoryOffset + n);
      temps.push(y);
      return y;
    };
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
      if (batchA <= 1 && batchB <= 1) {
        // XNNPACK packs b (about b's size) in memory it allocates itself: make sure that allocation can succeed.
        const bBytes = b.shape.reduce((x, y) => x * y, 1) * 4;
        ensureWasmHeadroom(bBytes);
        if (policy === 'marked' && !packed.has(b.dataId) && !temps.includes(b)) b = copyOf(b);
        return run(orig, { a, b }, backend, plain);
      }
      if (!sameBatch) return run(orig, { a, b }, backend, plain); // broadcasting: rare, keep the stock kernel
      const [M, K] = a.shape.slice(-2);
      const N = b.shape[b.shape.length - 1];
      const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
      const off = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
      try {
        for (let i = 0; i < batchA; i++) {
          const sa = backend.makeOutput([1, M, K], 'float32');
          temps.push(sa);
          const sb = backend.makeOutput([1, K, N], 'float32');
          temps.push(sb);
          // Offsets are re-read after each allocation: malloc may grow (and move the view of) the heap.
          let heap = backend.wasm.HEAPU8;
          heap.copyWithin(off(sa), off(a) + i * M * K * 4, off(a) + (i + 1) * M * K * 4);
          heap.copyWithin(off(sb), off(b) + i * K * N * 4, off(b) + (i + 1) * K * N * 4);
          const r = run(orig, { a: sa, b: sb }, backend, plain);
          heap = backend.wasm.HEAPU8;
          heap.copyWithin(off(out) + i * M * N * 4, off(r), off(r) + M * N * 4);
          backend.disposeData(r.dataId);
          for (const t of temps.splice(-2)) backend.disposeData(t.dataId);
        }
      } catch (e) {
        backend.disposeData(out.dataId); // out of memory part way: the output never reaches the engine
        throw e;
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

/**
 * tfjs-wasm's Identity kernel copies its input. tfjs runs it for every tensor it saves for the backward pass
 * (`keep(clone(t))`), so each saved activation existed twice, and the embedding table got copied once per
 * step (154 MB at GPT-2's size). Measured on GPT-2-124M at batch 2 x 128 the copies were over half of the
 * training step's tensor memory. The replacement shares the buffer (reference-counted), as the cpu and webgpu
 * backends' Identity does: no kernel writes into its inputs, so sharing is safe.
 */
export function installSharedWasmIdentity(): void {
  if (sharedIdentity) return;
  const orig = tf.getKernel('Identity', 'wasm');
  if (!orig) throw new Error('installSharedWasmIdentity: the wasm backend is not registered');
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ((args: { inputs: { x: TensorInfo }; backend: WasmBackend & { incRef(d: object): void } }) => {
      const { x } = args.inputs;
      if (x.dtype === 'string') return (orig.kernelFunc as unknown as (a: unknown) => TensorInfo)(args);
      args.backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as unknown as tf.KernelFunc,
  });
  sharedIdentity = true;
}
let sharedIdentity = false;

/**
 * tfjs-wasm's Slice starts by copying the whole input out of the wasm heap (readSync), whatever the slice:
 * 170 ms to take 8,256 rows of GPT-2's [50257, 768] embedding, which the streamed LM-head loss does 25 times a
 * step. The replacement reads the input in place and copies only the selected runs.
 */
export function installFastWasmSlice(): void {
  if (fastSlice) return;
  const orig = tf.getKernel('Slice', 'wasm');
  if (!orig) throw new Error('installFastWasmSlice: the wasm backend is not registered');
  type Backend = WasmBackend & { typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array };
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({
    kernelName: 'Slice',
    backendName: 'wasm',
    kernelFunc: ((args: { inputs: { x: TensorInfo }; backend: Backend; attrs: { begin: number | number[]; size?: number | number[] } }) => {
      const { x } = args.inputs;
      const { backend } = args;
      if (x.dtype === 'string') return (orig.kernelFunc as unknown as (a: unknown) => TensorInfo)(args);
      const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs.begin, args.attrs.size);
      const out = backend.makeOutput(size, x.dtype);
      if (size.some((d) => d === 0)) return out;
      // Views after makeOutput: an allocation may grow (and detach) the heap.
      const xv = backend.typedArrayFromHeap(x);
      const ov = backend.typedArrayFromHeap(out);
      const rank = x.shape.length;
      const stride = (d: number) => x.shape.slice(d + 1).reduce((p, q) => p * q, 1);
      // The innermost copied run: the trailing dims that are taken whole, plus the last partial one.
      let k = rank - 1;
      while (k > 0 && size[k] === x.shape[k]) k--;
      const run = size[k] * stride(k);
      let o = 0;
      const copy = (d: number, off: number): void => {
        if (d === k) {
          const start = off + begin[k] * stride(k);
          ov.set(xv.subarray(start, start + run), o);
          o += run;
          return;
        }
        for (let i = 0; i < size[d]; i++) copy(d + 1, off + (begin[d] + i) * stride(d));
      };
      copy(0, 0);
      return out;
    }) as unknown as tf.KernelFunc,
  });
  fastSlice = true;
}
let fastSlice = false;

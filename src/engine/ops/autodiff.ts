/**
 * Reverse-mode gradients over tfjs's tape, with the memory behaviour training a 100M+ model needs, and
 * gradient checkpointing built on it.
 *
 * tfjs's own `engine.gradients` keeps every intermediate gradient and every saved activation alive until the
 * whole backward pass ends (they all live in one tidy scope). Measured on a GPT-2-124M-shaped LoRA step at
 * batch 1 x 64 that doubled the peak. Here each tape node's saved tensors and the gradients of its outputs
 * are released as soon as that node has been back-propagated, so the peak is the forward's saved activations
 * plus a few gradients in flight; saved tensors of nodes off the x -> y path are released before the
 * backward pass starts.
 *
 * `gradients` may run inside another backward pass (checkpoint's recompute does): it records on a tape of its
 * own and puts the engine's tape state back afterwards. It uses the engine's tape internals (activeTape,
 * gradientDepth, tape nodes' `gradient` / `saved`), which are stable across tfjs 4.x.
 */
import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode(kernelName: string, inputs: unknown, outputs: unknown, gradientsFunc: unknown, saved: tf.Tensor[], attrs: unknown): void;
  __peftStudioShapeOnly?: boolean;
}

const engine = () => {
  const e = tf.engine() as unknown as EngineInternals;
  if (!e.__peftStudioShapeOnly) keepShapesOnly(e);
  return e;
};

/**
 * Kernels whose gradient reads only the shapes of the inputs tfjs saves for it: Add and Sub (to sum a
 * broadcast gradient back), Reshape, Slice, Concat, Sum and Mean. tfjs still keeps those inputs alive until
 * the backward pass, so every residual add, bias add and LoRA add held two activations for nothing (measured:
 * 10.6 MB of 28 MB saved per GPT-2 layer at batch 8 x 64, d = 256). Here such a node saves shape stubs instead.
 */
const SHAPE_ONLY = new Set(['Add', 'Sub', 'Reshape', 'Slice', 'Concat', 'Sum', 'Mean']);

function keepShapesOnly(e: EngineInternals): void {
  const add = e.addTapeNode.bind(e);
  e.addTapeNode = (kernelName, inputs, outputs, gradientsFunc, saved, attrs) => {
    if (SHAPE_ONLY.has(kernelName) && saved?.length) {
      const stubs = saved.map((t) => ({ shape: t.shape, dtype: t.dtype, size: t.size, rank: t.rank, isDisposed: false, dispose() {} }));
      for (const t of saved) t.dispose();
      saved = stubs as unknown as tf.Tensor[];
    }
    add(kernelName, inputs, outputs, gradientsFunc, saved, attrs);
  };
  e.__peftStudioShapeOnly = true;
}

/** Nodes on a path from one of xs to y, with their inputs pruned to those that depend on xs (as tfjs does). */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set<number>([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodeFromX.has(node.id) || !nodeToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[k] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

function releaseSaved(node: TapeNode): void {
  for (const t of node.saved ?? []) t.dispose();
  node.saved = [];
}

/**
 * The value of f() and its gradients with respect to xs (null where y does not depend on an x), with an
 * optional upstream gradient dy (default ones). f's intermediates are released; the value and grads belong
 * to the caller.
 */
export function gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const state = engine().state;
  const outerTape = state.activeTape;
  const outerDepth = state.gradientDepth;
  let tape: TapeNode[];
  let y: tf.Tensor;
  state.activeTape = [];
  state.gradientDepth = outerDepth + 1;
  try {
    y = tf.tidy(f);
    tape = state.activeTape!;
  } catch (e) {
    // tidy released the forward's tensors, but not what the tape kept for a backward that will not happen
    // (out of memory mid-forward must not leak the activations saved so far).
    for (const node of state.activeTape ?? []) releaseSaved(node);
    throw e;
  } finally {
    state.activeTape = outerTape;
    state.gradientDepth = outerDepth;
  }
  if (!(y instanceof tf.Tensor)) throw new Error('gradients: f must return a tensor');
  const path = pathNodes(tape, xs, y);
  const onPath = new Set(path.map((n) => n.id));
  // Activations saved by ops that do not lead from xs to y are never needed: free them before the backward.
  for (const node of tape) if (!onPath.has(node.id)) releaseSaved(node);
  const byId = new Map(tape.map((n) => [n.id, n]));
  try {
    const found = tf.tidy(() => {
      const acc = new Map<number, tf.Tensor>();
      acc.set(y.id, dy ?? tf.onesLike(y));
      const callerOwned = dy;
      const xIds = new Set(xs.map((x) => x.id));
      for (let i = path.length - 1; i >= 0; i--) {
        const node = path[i];
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
        if (dys.some((d) => d !== null)) {
          if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
          const inputGrads = node.gradient(dys);
          for (const [name, x] of Object.entries(node.inputs)) {
            const thunk = inputGrads[name];
            if (!thunk) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
            const dx = tf.tidy(() => thunk());
            if (dx.dtype !== 'float32' || dx.shape.join(',') !== x.shape.join(',')) {
              throw new Error(`Gradient of ${node.kernelName} input ${name}: got ${dx.dtype} [${dx.shape}], expected float32 [${x.shape}]`);
            }
            const prev = acc.get(x.id);
            if (prev) {
              acc.set(x.id, tf.add(prev, dx));
              // Either may be the caller's dy, handed through unchanged by a gradient function.
              if (prev !== callerOwned) prev.dispose();
              if (dx !== callerOwned) dx.dispose();
            } else acc.set(x.id, dx);
          }
        }
        // Every consumer of this node's outputs came later on the tape and is done: their gradients and this
        // node's saved activations are no longer needed.
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          if (!g || xIds.has(o.id)) continue;
          acc.delete(o.id);
          // A gradient function may hand its dy through unchanged as an input's gradient.
          const shared = [...acc.values()].some((v) => v === g);
          if (!shared && g !== callerOwned) g.dispose();
        }
        releaseSaved(byId.get(node.id)!);
      }
      const out: Record<string, tf.Tensor> = {};
      xs.forEach((x, i) => {
        const g = acc.get(x.id);
        if (g) out[i] = g;
      });
      return out;
    });
    return { value: y, grads: xs.map((_, i) => found[i] ?? null) };
  } finally {
    for (const node of tape) releaseSaved(node);
  }
}

/**
 * Gradient checkpointing: runs fn(x, consts) without keeping its activations, and recomputes them during the
 * backward pass to get the gradients of x and of `vars` (every trainable variable fn reads, which the caller
 * lists). `consts` are tensors fn reads that get no gradient (masks, rotary tables): they are kept for the
 * recompute, since the forward's scope disposes its own tensors long before the backward pass. fn must be
 * deterministic (dropout takes explicit seeds) so that the recompute reproduces the forward.
 */
export function checkpoint(
  fn: (x: tf.Tensor, consts: tf.Tensor[]) => tf.Tensor, x: tf.Tensor, consts: tf.Tensor[], vars: tf.Variable[],
): tf.Tensor {
  const op = tf.customGrad((...args: unknown[]) => {
    const xIn = args[0] as tf.Tensor;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const value = fn(xIn, consts);
    save([xIn, ...consts]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ...kept] = saved;
        const wrt: tf.Tensor[] = [xs, ...vars];
        const r = gradients(() => fn(xs, kept), wrt, dy as tf.Tensor);
        r.value.dispose();
        return r.grads.map((g, i) => g ?? tf.zerosLike(wrt[i]));
      },
    };
  });
  return (op as unknown as (...t: tf.Tensor[]) => tf.Tensor)(x, ...vars);
}

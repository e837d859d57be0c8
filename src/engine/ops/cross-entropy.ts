/**
 * The causal-LM head and its cross-entropy as one op.
 *
 * At GPT-2's vocabulary (50,257) the plain path builds logits, log-softmax, a one-hot and their product for
 * every token: four [N, V] tensors (about 800 MB at batch 8 x 128), kept on the tape. Here the gradient with
 * respect to the hidden states is computed in the forward pass (it needs only the softmax and the labels), so
 * nothing of size V survives the op:
 *   loss  = mean over valid rows of  lse(z) - z[label],   z = h W^T
 *   dL/dh = w (softmax(z) W - W[label]),   w = valid / count
 *
 * A frozen head (every PEFT method that leaves lm_head alone) streams over slices of the vocabulary, the
 * way flash attention streams over keys: for each slice j, z_j = h W_j^T, and with the running row maximum m
 * and sum s of exp(z - m), acc = sum_j exp(z_j - m) W_j is rescaled as m grows; softmax(z) W = acc / s. Only
 * one slice of the weight is ever transposed (and, on wasm, packed by XNNPACK): the whole-matrix transpose and
 * the two packed copies the row-block version needed were 460 MB at GPT-2's size and 1.6 GB at Qwen2.5-0.5B's.
 * exp(z - max z) comes from the fast softmax kernel (softmax / its row maximum), 3x faster than exp on wasm.
 *
 * A trainable head (pretraining, modules_to_save) also needs dL/dW = dz^T h, so it goes a block of rows at a
 * time over the whole vocabulary.
 */
import * as tf from '@tensorflow/tfjs';
import { fused, needsGrad } from './fused';
import { keepPacked } from '../wasm-matmul';

/** Index transformers' CrossEntropyLoss ignores. */
export const IGNORE_INDEX = -100;

let phase: (() => void) | null = null;

/** Called when the fused loss starts and ends (the benchmark attributes memory to the LM head with it). */
export function onLmHeadPhase(f: (() => void) | null): void {
  phase = f;
}

/** About 4M logits (16 MB) per [rows, columns] tensor, of which a few exist at a time. */
const BLOCK_ELEMENTS = 4 * 2 ** 20;

interface Streamed {
  /** Summed loss over valid rows. */
  lossSum: tf.Tensor;
  /** softmax(z) W for every row [N, C]. */
  softmaxW: tf.Tensor;
  /** Each row's label row of W [N, C]. */
  labelRows: tf.Tensor;
  /** argmax of each row's logits (only when asked). */
  preds: tf.Tensor | null;
}

/** The frozen-head pass over vocabulary slices (see the file comment). Returns new tensors; frees the rest. */
function streamVocab(h: tf.Tensor, weight: tf.Tensor, labels: tf.Tensor, valid: tf.Tensor, withPreds: boolean): Streamed {
  const [N, C] = h.shape as [number, number];
  const V = weight.shape[0]!;
  // 2,048 columns: measured on wasm, [508, 768] x [768, v] runs at 26 GFLOP/s for v = 1,024 to 2,048 and
  // 18 at v = 8,256 (the output no longer fits in cache).
  const cols = Math.min(V, 2048, Math.max(256, Math.floor(BLOCK_ELEMENTS / N)));
  const labelRows = tf.gather(weight, tf.maximum(labels, tf.scalar(0, 'int32'))); // [N, C]
  let m: tf.Tensor | null = null; // running max [N, 1]
  let s: tf.Tensor | null = null; // running sum of exp(z - m) [N, 1]
  let acc: tf.Tensor | null = null; // running sum of exp(z - m) W [N, C]
  let best: tf.Tensor | null = null; // running max logit and its index, for argmax
  let bestIdx: tf.Tensor | null = null;
  for (let j0 = 0; j0 < V; j0 += cols) {
    const v = Math.min(cols, V - j0);
    const next = tf.tidy(() => {
      const wj = tf.slice(weight, [j0, 0], [v, C]); // [v, C]
      const wjT = tf.transpose(wj); // [C, v]
      const z = tf.matMul(h as tf.Tensor2D, wjT as tf.Tensor2D); // [N, v]
      const mb = tf.max(z, -1, true); // [N, 1]
      const p = tf.softmax(z, -1);
      const pm = tf.max(p, -1, true); // = 1 / sum(exp(z - mb))
      const e = tf.div(p, pm); // exp(z - mb)
      const ew = tf.matMul(e as tf.Tensor2D, wj as tf.Tensor2D); // [N, C]
      const sb = tf.div(1, pm);
      let out: tf.Tensor[];
      if (!m) out = [mb, sb, ew];
      else {
        const mn = tf.maximum(m, mb);
        const a = tf.exp(tf.sub(m, mn));
        const b = tf.exp(tf.sub(mb, mn));
        out = [mn, tf.add(tf.mul(s!, a), tf.mul(sb, b)), tf.add(tf.mul(acc!, a), tf.mul(ew, b))];
      }
      if (withPreds) {
        const idx = tf.add(tf.argMax(z, -1), tf.scalar(j0, 'int32')); // [N]
        const top = mb.reshape([N]);
        if (!best) out.push(top, idx);
        else {
          const better = tf.greater(top, best);
          out.push(tf.where(better, top, best), tf.where(better, idx, bestIdx!));
        }
      }
      return out;
    });
    [m, s, acc, best, bestIdx].forEach((t) => t?.dispose());
    [m, s, acc] = next;
    if (withPreds) [best, bestIdx] = [next[3], next[4]];
  }
  const out = tf.tidy(() => {
    const lse = tf.add(m!, tf.log(s!)).reshape([N]);
    const z = tf.sum(tf.mul(h, labelRows), -1); // each row's label logit
    return { lossSum: tf.sum(tf.mul(tf.sub(lse, z), valid)), softmaxW: tf.div(acc!, s!) };
  });
  [m, s, acc, best].forEach((t) => t?.dispose());
  return { ...out, labelRows, preds: bestIdx };
}

/**
 * Mean cross-entropy of h W^T ([N, C] x [V, C]^T) against int32 labels [N], skipping IGNORE_INDEX rows
 * (0 when no row is scored, where transformers would give NaN).
 */
export function lmHeadLoss(h: tf.Tensor, weight: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const gw = needsGrad(weight);
  return fused(gw ? [h, weight] : [h], (save) => {
    phase?.();
    const valid = tf.tidy(() => tf.notEqual(labels, IGNORE_INDEX).toFloat());
    const count = tf.tidy(() => tf.maximum(tf.sum(valid), 1));
    let lossSum: tf.Tensor;
    let grads: tf.Tensor[];
    if (!gw) {
      const r = streamVocab(h, weight, labels, valid, false);
      lossSum = r.lossSum;
      grads = [tf.tidy(() => tf.mul(tf.sub(r.softmaxW, r.labelRows), tf.div(valid, count).expandDims(1)))];
      [r.softmaxW, r.labelRows].forEach((t) => t.dispose());
    } else {
      [lossSum, ...grads] = rowBlocks(h, weight, labels, valid, count);
    }
    save(grads);
    const value = tf.div(lossSum, count);
    phase?.();
    return { value, gradFunc: (dy, saved) => saved.map((g) => tf.mul(g, dy)) };
  }) as tf.Scalar;
}

/**
 * Trainable head: rows in blocks, each against the whole (transposed) vocabulary; returns [lossSum, dh, dW]
 * with the gradients already divided by the count.
 */
function rowBlocks(h: tf.Tensor, weight: tf.Tensor, labels: tf.Tensor, valid: tf.Tensor, count: tf.Tensor): tf.Tensor[] {
  const [N, C] = h.shape as [number, number];
  const V = weight.shape[0]!;
  const rows = Math.max(1, Math.floor(BLOCK_ELEMENTS / V));
  const wT = tf.transpose(weight);
  keepPacked(wT); // reused by every block
  let lossSum: tf.Tensor = tf.scalar(0);
  let dW: tf.Tensor = tf.zeros([V, C]);
  const dh: tf.Tensor[] = [];
  for (let r0 = 0; r0 < N; r0 += rows) {
    const n = Math.min(rows, N - r0);
    const [l, d, w] = tf.tidy(() => {
      const hb = tf.slice(h, [r0, 0], [n, C]);
      const lb = tf.maximum(tf.slice(labels, [r0], [n]), tf.scalar(0, 'int32'));
      const vb = tf.slice(valid, [r0], [n]);
      const z = tf.matMul(hb as tf.Tensor2D, wT as tf.Tensor2D); // [n, V]
      const picked = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), lb); // flat label indices
      const zl = tf.gather(z.reshape([-1]), picked);
      const p = tf.softmax(z, -1);
      const lse = tf.sub(tf.max(z, -1), tf.log(tf.max(p, -1))); // max softmax = 1 / sum(exp(z - max))
      const wr = tf.div(vb, count); // per-row weight of the mean
      const pl = tf.gather(p.reshape([-1]), picked);
      // dz = softmax * w, minus w at each row's label
      const dz = tf.tensorScatterUpdate(tf.mul(p, wr.expandDims(1)).reshape([-1]), picked.expandDims(1), tf.mul(tf.sub(pl, 1), wr)).reshape([n, V]);
      return [
        tf.add(lossSum, tf.sum(tf.mul(tf.sub(lse, zl), vb))),
        tf.matMul(dz as tf.Tensor2D, weight as tf.Tensor2D),
        tf.add(dW, tf.matMul(dz as tf.Tensor2D, hb as tf.Tensor2D, true, false)),
      ];
    });
    lossSum.dispose();
    dW.dispose();
    [lossSum, dW] = [l, w];
    dh.push(d);
  }
  wT.dispose();
  const dH = dh.length === 1 ? dh[0] : tf.concat(dh, 0);
  if (dh.length > 1) dh.forEach((t) => t.dispose());
  return [lossSum, dH, dW];
}

/** Evaluation: the same mean loss plus each row's argmax prediction, without building all logits. */
export function lmHeadEval(h: tf.Tensor, weight: tf.Tensor, labels: tf.Tensor): { loss: tf.Scalar; preds: tf.Tensor } {
  return tf.tidy(() => {
    const valid = tf.notEqual(labels, IGNORE_INDEX).toFloat();
    const r = streamVocab(h, weight, labels, valid, true);
    return { loss: tf.div(r.lossSum, tf.maximum(tf.sum(valid), 1)) as tf.Scalar, preds: r.preds! };
  });
}

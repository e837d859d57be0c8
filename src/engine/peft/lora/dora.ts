/**
 * DoRA (LoraConfig use_dora=True) as peft/tuners/lora/dora.py (0.15.2) computes it for Linear and GPT-2 Conv1D:
 * a learned magnitude m [out] per module rescales each output row of the LoRA-updated weight,
 *   W' = (m / n) * (V + s * B @ A),   n = ||V + s * B @ A||_2 per output row,   V = W as [out, in],
 * with n recomputed from the current A and B on every forward and treated as a constant (no gradient flows
 * through it; DoRA paper section 4.3, PEFT's `weight_norm.detach()`).
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Runs f off the gradient tape: ops inside a customGrad forward are never recorded, and an op with no inputs
 * has nothing to back-propagate to, so the result is a constant to autodiff (torch's .detach()).
 */
function detached(f: () => tf.Tensor): tf.Tensor {
  const op = tf.customGrad(((_save: tf.GradSaveFunc) => ({ value: f(), gradFunc: () => [] })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as () => tf.Tensor)();
}

/** ||V + s * B @ A||_2 per output row, as a constant [out]; `weight` is [out, in] (Linear) or [in, out] (Conv1D). */
export function doraWeightNorm(weight: tf.Tensor, conv1d: boolean, A: tf.Tensor, B: tf.Tensor, scaling: number): tf.Tensor1D {
  return detached(() =>
    tf.tidy(() => {
      // The update in the weight's own layout, so the (larger) base weight is never transposed.
      const delta = conv1d ? tf.matMul(A as tf.Tensor2D, B as tf.Tensor2D, true, true) : tf.matMul(B as tf.Tensor2D, A as tf.Tensor2D);
      const w = tf.add(weight, tf.mul(delta, scaling));
      return tf.sqrt(tf.sum(tf.square(w), conv1d ? 0 : 1));
    }),
  ) as tf.Tensor1D;
}

/** Row norms [out] of a weight in its own layout (PEFT's merge: n of W + delta, the delta already scaled). */
export function rowNorm(weight: tf.Tensor, conv1d: boolean): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(weight), conv1d ? 0 : 1))) as tf.Tensor1D;
}

/** A per-output-row factor [out] laid out to multiply a weight in its own layout ([out, 1] or [1, out]). */
export function alongOut(factor: tf.Tensor, conv1d: boolean): tf.Tensor {
  return factor.reshape(conv1d ? [1, -1] : [-1, 1]);
}

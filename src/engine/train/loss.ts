/** Losses computed as transformers computes them inside its models. */
import * as tf from '@tensorflow/tfjs';

import { IGNORE_INDEX } from '../ops/cross-entropy';

export { IGNORE_INDEX };

/**
 * Causal LM loss: logits[:, :-1] against labels[:, 1:], cross-entropy averaged over targets != -100.
 * One-hot picking instead of gather keeps the gradient available on every backend.
 */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [B, S, V] = logits.shape;
    const l = tf.slice(logits, [0, 0, 0], [B, S - 1, V]).reshape([B * (S - 1), V]);
    const y = tf.slice(labels.toInt(), [0, 1], [B, S - 1]).reshape([B * (S - 1)]);
    return maskedCrossEntropy(l, y);
  });
}

/** Mean cross-entropy of logits [N, V] against int labels [N], skipping IGNORE_INDEX. */
export function maskedCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[1]!;
    const valid = tf.notEqual(labels, IGNORE_INDEX);
    const safe = tf.where(valid, labels, tf.zerosLike(labels));
    const logp = tf.logSoftmax(logits, -1);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(safe, V).toFloat()), -1); // [N]
    const w = valid.toFloat();
    // max(count, 1): a batch with no targets gives 0 loss and 0 gradient instead of NaN.
    return tf.div(tf.neg(tf.sum(tf.mul(picked, w))), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
  });
}

/** Token-classification loss: cross-entropy of logits [B, S, L] against labels [B, S] over labels != -100. */
export function tokenClsLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => maskedCrossEntropy(logits.reshape([-1, logits.shape[2]!]), labels.toInt().reshape([-1])));
}

/** Sequence-classification loss: cross-entropy for num_labels > 1, MSE regression for num_labels == 1. */
export function seqClsLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (logits.shape[1] === 1) return tf.losses.meanSquaredError(labels.toFloat(), logits.reshape([-1])) as tf.Scalar;
    return maskedCrossEntropy(logits, labels.toInt());
  });
}

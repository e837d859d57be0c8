import * as tf from '@tensorflow/tfjs';

/**
 * tf.variable(t) shares t's data: while t is alive, reassigning or disposing the variable does not free that
 * data (about the adapter's size, leaked per run). This variable owns its initial value.
 */
export function ownedVariable(init: tf.Tensor, trainable = true, name?: string): tf.Variable {
  const v = tf.variable(init, trainable, name);
  init.dispose();
  return v;
}

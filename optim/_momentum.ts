/**
 * The heavy-ball momentum step that SGD and LARS share.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * μ ← m·μ + d; p ← p − lr·μ (PyTorch's order of operations).
 *
 * @param param p.
 * @param direction d, the (decayed, possibly rescaled) gradient.
 * @param buffer μ.
 * @param lr The learning rate.
 * @param momentum m.
 * @returns The new parameter and momentum buffer.
 */
export function momentumStep(
  param: tf.Tensor,
  direction: tf.Tensor,
  buffer: tf.Tensor,
  lr: number,
  momentum: number,
): { param: tf.Tensor; momentumBuffer: tf.Tensor } {
  // μ: [...p.shape]
  const momentumBuffer = tf.add(tf.mul(buffer, momentum), direction);
  return { param: tf.sub(param, tf.mul(momentumBuffer, lr)), momentumBuffer };
}

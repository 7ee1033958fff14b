/**
 * One SGD-with-momentum update of one parameter, as PyTorch's `torch.optim.SGD`
 * (no dampening, no Nesterov): a pure function of tensors, so `createOptimizer`
 * (the pretraining loop's and the linear probe's optimizer) runs one copy of
 * the arithmetic.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { momentumStep } from "./_momentum.ts";

/** What {@linkcode sgdUpdate} reads: a parameter, its gradient and its state. */
export interface SgdInputs {
  /** The parameter p (any shape). */
  param: tf.Tensor;
  /** Its gradient g, the shape of `param`. */
  grad: tf.Tensor;
  /** The momentum buffer μ, the shape of `param` (zeros before the first step). */
  momentumBuffer: tf.Tensor;
}

/**
 * What {@linkcode sgdUpdate} returns: the new parameter and buffer (a type, so
 * `tf.tidy` can return it).
 */
export type SgdResult = {
  /** The updated parameter. */
  param: tf.Tensor;
  /** The updated momentum buffer. */
  momentumBuffer: tf.Tensor;
};

/** Options of {@linkcode sgdUpdate} (PyTorch `SGD`'s defaults). */
export interface SgdOptions {
  /** Momentum m. @default {0} */
  momentum?: number;
  /** L2 weight decay wd, added to the gradient. @default {0} */
  weightDecay?: number;
}

/** The defaults of {@linkcode SgdOptions} (PyTorch's). */
export const DEFAULT_SGD_OPTIONS: Readonly<Required<SgdOptions>> = Object
  .freeze({ momentum: 0, weightDecay: 0 });

/**
 * One SGD step (PyTorch `SGD`): d = g + wd·p; μ ← m·μ + d; p ← p − lr·μ.
 * With wd = 0 the gradient is used as it is. The options are not validated
 * here: the optimizers built on it validate them once, not on every step.
 * Returns new tensors and disposes nothing; run it inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
import { momentumStep } from "./_momentum.ts";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { sgdUpdate } from "@scaling-vicreg/optim/sgd";
 * await useBackend("cpu");
 * const next = tf.tidy(() =>
 *   sgdUpdate(
 *     { param: tf.ones([2]), grad: tf.ones([2]), momentumBuffer: tf.zeros([2]) },
 *     0.1,
 *     { momentum: 0.9 },
 *   )
 * );
 * // next.param = [0.9, 0.9], next.momentumBuffer = [1, 1]
 * tf.dispose([next.param, next.momentumBuffer]);
 * ```
 *
 * @param inputs The parameter, its gradient and its momentum buffer.
 * @param lr The learning rate.
 * @param options See {@linkcode SgdOptions}.
 * @returns The new parameter and momentum buffer.
 */
export function sgdUpdate(
  inputs: SgdInputs,
  lr: number,
  options: SgdOptions = {},
): SgdResult {
  const { momentum, weightDecay } = { ...DEFAULT_SGD_OPTIONS, ...options };
  const { param, grad } = inputs;
  const d = weightDecay === 0 ? grad : tf.add(grad, tf.mul(param, weightDecay));
  return momentumStep(param, d, inputs.momentumBuffer, lr, momentum);
}

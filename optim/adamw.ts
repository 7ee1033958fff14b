/**
 * One AdamW update of one parameter, as PyTorch's `torch.optim.AdamW`
 * (decoupled weight decay, bias-corrected moments, no AMSGrad): a pure
 * function of tensors, which `createOptimizer` (the pretraining loop's and
 * the linear probe's optimizer) applies.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** What {@linkcode adamwUpdate} reads: a parameter, its gradient and its state. */
export interface AdamwInputs {
  /** The parameter p (any shape). */
  param: tf.Tensor;
  /** Its gradient g, the shape of `param`. */
  grad: tf.Tensor;
  /** The first moment m (`exp_avg`), zeros before the first step. */
  expAvg: tf.Tensor;
  /** The second moment v (`exp_avg_sq`), zeros before the first step. */
  expAvgSq: tf.Tensor;
  /** The 1-based number t of this update (the bias corrections use it). */
  step: number;
}

/**
 * What {@linkcode adamwUpdate} returns: the new parameter and moments (a type,
 * so `tf.tidy` can return it).
 */
export type AdamwResult = {
  /** The updated parameter. */
  param: tf.Tensor;
  /** The updated first moment. */
  expAvg: tf.Tensor;
  /** The updated second moment. */
  expAvgSq: tf.Tensor;
};

/** Options of {@linkcode adamwUpdate} (PyTorch `AdamW`'s defaults). */
export interface AdamwOptions {
  /** β₁. @default {0.9} */
  beta1?: number;
  /** β₂. @default {0.999} */
  beta2?: number;
  /** ε, added to √v̂. @default {1e-8} */
  epsilon?: number;
  /** Decoupled weight decay wd. @default {0.01} */
  weightDecay?: number;
}

/** The defaults of {@linkcode AdamwOptions} (PyTorch's). */
export const DEFAULT_ADAMW_OPTIONS: Readonly<Required<AdamwOptions>> = Object
  .freeze({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 });

/**
 * One AdamW step (PyTorch `AdamW`, Loshchilov & Hutter 2019):
 * p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
 * p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε). With wd = 0 the parameter
 * is not multiplied at all. The options are not validated here: the
 * optimizers built on it validate them once, not on every step. Returns new
 * tensors and disposes nothing; run it inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { adamwUpdate } from "@scaling-vicreg/optim/adamw";
 * await useBackend("cpu");
 * const next = tf.tidy(() =>
 *   adamwUpdate({
 *     param: tf.ones([2]),
 *     grad: tf.tensor1d([1, -1]),
 *     expAvg: tf.zeros([2]),
 *     expAvgSq: tf.zeros([2]),
 *     step: 1,
 *   }, 0.1, { weightDecay: 0 })
 * );
 * // The first step moves each element by ≈ lr against its gradient's sign:
 * // next.param ≈ [0.9, 1.1]
 * tf.dispose([next.param, next.expAvg, next.expAvgSq]);
 * ```
 *
 * @param inputs The parameter, its gradient, its moments and the step t.
 * @param lr The learning rate.
 * @param options See {@linkcode AdamwOptions}.
 * @returns The new parameter and moments.
 */
export function adamwUpdate(
  inputs: AdamwInputs,
  lr: number,
  options: AdamwOptions = {},
): AdamwResult {
  const { beta1, beta2, epsilon, weightDecay } = {
    ...DEFAULT_ADAMW_OPTIONS,
    ...options,
  };
  const { param, grad, step } = inputs;
  // All element-wise, every tensor the shape of `param`.
  const expAvg = tf.add(tf.mul(inputs.expAvg, beta1), tf.mul(grad, 1 - beta1));
  const expAvgSq = tf.add(
    tf.mul(inputs.expAvgSq, beta2),
    tf.mul(tf.square(grad), 1 - beta2),
  );
  const mHat = tf.div(expAvg, 1 - beta1 ** step);
  const vHat = tf.div(expAvgSq, 1 - beta2 ** step);
  const update = tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon));
  const decayed = weightDecay === 0
    ? param
    : tf.mul(param, 1 - lr * weightDecay);
  return { param: tf.sub(decayed, tf.mul(update, lr)), expAvg, expAvgSq };
}

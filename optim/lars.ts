/**
 * One LARS update of one parameter, as facebookresearch/vicreg's `LARS`
 * (You et al. 2017): SGD with momentum whose step is rescaled per parameter
 * by a trust ratio. A pure function of tensors; `createOptimizer` (`optimizer.ts`) applies it
 * to the parameters that are not excluded (biases and norms get
 * {@linkcode sgdUpdate} without decay, as VICReg's `exclude_bias_and_norm`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { momentumStep } from "./_momentum.ts";
import type { SgdInputs, SgdResult } from "./sgd.ts";

export type { SgdInputs, SgdResult };

/** Options of {@linkcode larsUpdate} (the defaults of VICReg's `LARS` class). */
export interface LarsOptions {
  /** Momentum m. @default {0.9} */
  momentum?: number;
  /** L2 weight decay wd, added to the gradient. @default {0} */
  weightDecay?: number;
  /** Trust coefficient η. @default {0.001} */
  eta?: number;
}

/** The defaults of {@linkcode LarsOptions} (VICReg's `LARS` class). */
export const DEFAULT_LARS_OPTIONS: Readonly<Required<LarsOptions>> = Object
  .freeze({ momentum: 0.9, weightDecay: 0, eta: 0.001 });

/**
 * One LARS step: d = g + wd·p; d ← d · η‖p‖/‖d‖ (the factor is 1 when either
 * norm is 0); μ ← m·μ + d; p ← p − lr·μ. The options are not validated here:
 * the optimizers built on it validate them once, not on every step. Returns
 * new tensors and disposes nothing; run it inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { larsUpdate } from "@scaling-vicreg/optim/lars";
 * await useBackend("cpu");
 * const next = tf.tidy(() =>
 *   larsUpdate(
 *     { param: tf.tensor1d([3, 4]), grad: tf.tensor1d([0, 2]), momentumBuffer: tf.zeros([2]) },
 *     1,
 *     { eta: 0.1 },
 *   )
 * );
 * // ‖p‖ = 5, ‖g‖ = 2: the step is 0.1·5/2·g = [0, 0.5], p = [3, 3.5]
 * tf.dispose([next.param, next.momentumBuffer]);
 * ```
 *
 * @param inputs The parameter, its gradient and its momentum buffer.
 * @param lr The learning rate.
 * @param options See {@linkcode LarsOptions}.
 * @returns The new parameter and momentum buffer.
 */
export function larsUpdate(
  inputs: SgdInputs,
  lr: number,
  options: LarsOptions = {},
): SgdResult {
  const { momentum, weightDecay, eta } = {
    ...DEFAULT_LARS_OPTIONS,
    ...options,
  };
  const { param, grad } = inputs;
  const d = weightDecay === 0 ? grad : tf.add(grad, tf.mul(param, weightDecay));
  // ‖·‖₂ as √Σx²: tf.norm takes |x| and a general power, two slow
  // full-size kernels on wasm (a fifth of a ResNet-18 step on blas).
  const pn = tf.sqrt(tf.sum(tf.square(param))); // [] scalar
  const dn = tf.sqrt(tf.sum(tf.square(d))); // [] scalar
  const one = tf.onesLike(pn);
  const q = tf.where(
    tf.greater(pn, 0),
    tf.where(tf.greater(dn, 0), tf.div(tf.mul(pn, eta), dn), one),
    one,
  );
  return momentumStep(param, tf.mul(d, q), inputs.momentumBuffer, lr, momentum);
}

/**
 * Names of the fused kernels some backends register beyond TF.js's own, and
 * how library code asks for them: a member uses a fused kernel only when the
 * active backend has it, and plain tensor ops elsewhere.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Training-mode batch normalisation over every axis but the last, with an
 * optional fused ReLU. Inputs `x` (`[..., C]`), `gamma`, `beta` (`[C]`);
 * attributes `eps`, `relu`; outputs `[y, mean, variance, workspace]`: the
 * batch mean and biased variance (`[C]`) and an opaque float32 tensor the
 * gradient kernel needs. `blas` registers it when oneDNN loads.
 */
export const BATCH_NORM_TRAIN_KERNEL = "VicregBatchNormTrain";

/**
 * The gradient of {@linkcode BATCH_NORM_TRAIN_KERNEL}: inputs `dy`, `x`,
 * `mean`, `variance`, `gamma`, `beta`, `workspace`; the same attributes;
 * outputs `[dx, dGamma, dBeta]`.
 */
export const BATCH_NORM_TRAIN_GRAD_KERNEL = "VicregBatchNormTrainGrad";

/**
 * ReLU's gradient in one pass: inputs `dy` and `x` of one shape, output
 * `x > 0 ? dy : 0 · dy` (what `dy · step(x)` gives for every `x` but NaN,
 * where it gives `0 · dy` as PyTorch's `threshold_backward` does). `native`
 * registers it; elsewhere ReLU's gradient is `dy · step(x)`.
 */
export const RELU_GRAD_KERNEL = "VicregReluGrad";

/**
 * Whether the active backend registers a kernel.
 *
 * @example
 * ```ts
 * import { activeBackendHas, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * console.log(activeBackendHas("Conv2D")); // true
 * console.log(activeBackendHas("VicregBatchNormTrain")); // false
 * ```
 *
 * @param kernelName The kernel's name.
 * @returns Whether `tf.getBackend()` has it.
 */
export function activeBackendHas(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

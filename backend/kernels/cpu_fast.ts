/**
 * `cpu-fast`: a second pure-JavaScript CPU backend, identical to the `cpu`
 * reference except for the conv gradients, which are the im2col + matmul
 * kernels of `conv_grad.ts`. The `cpu` backend itself stays untouched: its
 * naive `Conv2DBackpropFilter` dominates a training step there (measured
 * share in `bench/README.md`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerAugmentKernels } from "./augment_kernels.ts";
import { registerConvGradKernels } from "./conv_grad.ts";

/** The TF.js name of the backend {@linkcode registerCpuFastBackend} registers. */
export const CPU_FAST_BACKEND = "cpu-fast";

/**
 * Registers the `cpu-fast` backend with TF.js once, without activating it:
 * `useBackend("cpu-fast")` activates it.
 *
 * @returns Resolves once it is registered.
 */
export async function registerCpuFastBackend(): Promise<void> {
  const { MathBackendCPU } = await import("@tensorflow/tfjs-backend-cpu");
  if (tf.getKernel(tf.Conv2D, CPU_FAST_BACKEND) === undefined) {
    // Priority 0: never chosen by TF.js on its own, only when named.
    tf.registerBackend(CPU_FAST_BACKEND, () => new MathBackendCPU(), 0);
    tf.copyRegisteredKernels("cpu", CPU_FAST_BACKEND);
    registerConvGradKernels(CPU_FAST_BACKEND);
    registerAugmentKernels(CPU_FAST_BACKEND);
  }
}

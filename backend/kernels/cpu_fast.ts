/**
 * `cpu-fast`: a second pure-JavaScript CPU backend, identical to the `cpu`
 * reference except for the conv gradients, which are the im2col + matmul
 * kernels of `conv_grad.ts`. The `cpu` backend itself stays untouched: its
 * naive `Conv2DBackpropFilter` takes ~95 % of a training step there.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerGradients } from "../backend.ts";
import { registerAugmentKernels } from "./augment_kernels.ts";
import { registerConvGradKernels } from "./conv_grad.ts";

/** The TF.js name of the backend {@linkcode useCpuFastBackend} registers. */
export const CPU_FAST_BACKEND = "cpu-fast";

/**
 * Registers `cpu-fast` (once: every `cpu` kernel, with the fast conv
 * gradients on top), registers gradients, and makes it the active backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useCpuFastBackend } from "@scaling-vicreg/backend/cpu-fast";
 * await useCpuFastBackend();
 * console.log(tf.getBackend()); // "cpu-fast"
 * ```
 *
 * @returns The backend's name, `"cpu-fast"`.
 */
export async function useCpuFastBackend(): Promise<string> {
  await registerGradients();
  await registerCpuFastBackend();
  if (!await tf.setBackend(CPU_FAST_BACKEND)) {
    throw new Error(`Backend "${CPU_FAST_BACKEND}" failed to initialise`);
  }
  await tf.ready();
  return CPU_FAST_BACKEND;
}

/**
 * Registers the `cpu-fast` backend with TF.js once, without activating it.
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

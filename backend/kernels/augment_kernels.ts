/**
 * The fused kernels `@scaling-vicreg/augment` uses on host-memory backends
 * (`cpu-fast`, `wasm`, `blas`), where one pass in JavaScript over the
 * backend's buffers beats dozens of small tensor ops. `augment` calls each
 * one only when the active backend has it, and uses tensor ops otherwise
 * (`cpu`, the untouched reference, and the GPU backends).
 *
 * @module
 */
import { registerColorKernels } from "./color.ts";
import { registerResampleKernels } from "./resample.ts";

export {
  ADJUST_HUE_KERNEL,
  CHANNEL_AFFINE_KERNEL,
  COLOR_JITTER_KERNEL,
} from "./color.ts";
export { CROP_RESIZE_KERNEL } from "./resample.ts";

/**
 * Registers every augmentation kernel for a host-memory backend (once).
 *
 * @example
 * ```ts ignore
 * import { registerAugmentKernels } from "@scaling-vicreg/backend/augment-kernels";
 * registerAugmentKernels("wasm");
 * ```
 *
 * @param backendName A cpu-style or wasm-style TF.js backend.
 */
export function registerAugmentKernels(backendName: string): void {
  registerColorKernels(backendName);
  registerResampleKernels(backendName);
}

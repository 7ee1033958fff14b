/**
 * `native`: the `blas` backend's native kernels (convolutions, their
 * gradients, BatchNorm and matrix products on oneDNN and the BLAS) on the
 * `cpu` backend's tensors, which are ordinary JavaScript buffers in native
 * memory: no 4 GiB wasm heap, so a step's slices are bounded by the
 * machine's memory instead. `MaxPool` (oneDNN's pooling, or one pass) and
 * element-wise kernels of its own replace `cpu`'s; the other kernels are the
 * `cpu` backend's. Starting it makes glibc keep freed memory for reuse
 * (`_malloc.ts`; `VICREG_KEEP_FREED=off` to leave glibc's defaults).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { CpuLike } from "./_wasm_heap.ts";
import { elementwiseKernelConfigs } from "./_native_elementwise_kernels.ts";
import { maxPoolKernelConfig } from "./_blas_pool_kernels.ts";
import { keepFreedMemory } from "./_malloc.ts";
import {
  loadNativeLibraries,
  type NativeLibraries,
  registerNativeKernels,
  replaceKernels,
} from "./blas_backend.ts";

/** The TF.js name of the backend {@linkcode registerNativeBackend} registers. */
export const NATIVE_BACKEND = "native";

let registered: Promise<NativeLibraries> | undefined;

/**
 * Registers the `native` backend with TF.js once, without activating it:
 * loads the BLAS and oneDNN (see `loadNativeLibraries`) and registers a
 * `cpu` backend with every `cpu` kernel plus the native ones.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs-core";
 * import { registerNativeBackend } from "./native_backend.ts";
 * const { blas } = await registerNativeBackend();
 * await tf.setBackend("native");
 * console.log(blas.library);
 * ```
 *
 * @returns The libraries in use.
 * @throws {Error} When no BLAS opens, naming what was tried.
 */
export function registerNativeBackend(): Promise<NativeLibraries> {
  registered ??= (async () => {
    const libraries = loadNativeLibraries();
    const { MathBackendCPU } = await import("@tensorflow/tfjs-backend-cpu");
    // Priority 0: never chosen by TF.js on its own, only when named. Its
    // buffers are the process's malloc, kept for reuse once it starts.
    tf.registerBackend(NATIVE_BACKEND, () => {
      keepFreedMemory();
      return new MathBackendCPU();
    }, 0);
    tf.copyRegisteredKernels("cpu", NATIVE_BACKEND);
    registerNativeKernels(NATIVE_BACKEND, "cpu", libraries);
    replaceKernels([
      floatCastConfig(),
      maxPoolKernelConfig(NATIVE_BACKEND, libraries.dnnl),
      ...elementwiseKernelConfigs(NATIVE_BACKEND, libraries.dnnl),
    ]);
    return libraries;
  })();
  registered.catch(() => registered = undefined);
  return registered;
}

/**
 * `cpu`'s `Cast` of int32 or bool to float32 keeps the integer buffer under
 * the float32 tensor (no encoding loss); the native kernels read float32
 * buffers as floats, so on `native` that cast makes a `Float32Array`. Every
 * other cast is the one {@linkcode registerNativeKernels} registered.
 */
function floatCastConfig(): tf.KernelConfig {
  const shared = tf.getKernel(tf.Cast, NATIVE_BACKEND);
  if (shared === undefined) throw new TypeError("Cast: not registered");
  return {
    kernelName: tf.Cast,
    backendName: NATIVE_BACKEND,
    kernelFunc: (args) => {
      const x = args.inputs.x;
      if (
        x === undefined || (args.attrs ?? {}).dtype !== "float32" ||
        (x.dtype !== "int32" && x.dtype !== "bool")
      ) {
        return shared.kernelFunc(args);
      }
      const cpu = args.backend as unknown as CpuLike;
      const values = cpu.data.get(x.dataId).values as ArrayLike<number>;
      return cpu.makeTensorInfo(x.shape, "float32", Float32Array.from(values));
    },
  };
}

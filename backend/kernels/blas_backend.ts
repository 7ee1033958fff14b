/**
 * `blas`: the wasm backend (XNNPACK, SIMD) with its convolutions, their
 * gradients, its matrix products and `Sum`/`Mean` over adjacent axes moved
 * to a native multithreaded BLAS through Deno's FFI (see `blas.ts` and
 * `blas_conv.ts`), copies that TF.js makes of saved tensors (`Identity`,
 * same-type `Cast`) replaced by shared buffers, `MaxPoolGrad` on oneDNN's
 * pooling (a one-pass loop without it), and
 * the fused augmentation kernels. The other element-wise ops, the other
 * reductions and the optimizer stay on wasm. The kernels of each op family
 * are in their own `_blas_*_kernels.ts` file; this one assembles and
 * registers them.
 *
 * It is a second TF.js backend sharing the wasm module, so tensors stay in
 * the wasm heap and the BLAS reads and writes them in place; `wasm` itself is
 * left as it was.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type Blas, loadBlas } from "./blas.ts";
import { Scratch } from "./scratch.ts";
import { registerAugmentKernels } from "./augment_kernels.ts";
import { type Dnnl, loadDnnl } from "./dnnl.ts";
import { setEnvUnlessSet } from "./_ffi.ts";
import { setFallbackBackend, type WasmBackend } from "./_wasm_heap.ts";
import { copyFreeKernelConfigs } from "./_blas_copy_kernels.ts";
import { maxPoolGradKernelConfig } from "./_blas_pool_kernels.ts";
import { reductionKernelConfigs } from "./_blas_reduction_kernels.ts";
import { convKernelConfigs } from "./_blas_conv_kernels.ts";
import { matMulKernelConfig } from "./_blas_matmul_kernels.ts";
import { batchNormKernelConfigs } from "./_blas_batch_norm_kernels.ts";

/** The TF.js name of the backend {@linkcode registerBlasBackend} registers. */
export const BLAS_BACKEND = "blas";

/**
 * Kernel configs running `Conv2D`, `Conv2DBackpropInput`,
 * `Conv2DBackpropFilter`, `FusedConv2D` (with oneDNN), `BatchMatMul`, and
 * `Sum`/`Mean` over adjacent axes on a BLAS, plus a copy-free `Identity` and
 * same-type `Cast` and `MaxPoolGrad` (oneDNN's, or one pass), for a wasm-style backend (one with `makeOutput` and
 * `typedArrayFromHeap`). Inputs they do not handle go to wasm's kernels.
 *
 * @example
 * ```ts ignore
 * import { blasKernelConfigs } from "./blas_backend.ts";
 * import { loadBlas } from "./blas.ts";
 * console.log(blasKernelConfigs("blas", loadBlas()).length); // 10
 * ```
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param blas The BLAS.
 * @param scratch Buffers the convolutions reuse.
 * @param dnnl oneDNN, when loaded: the three convolution kernels run on it
 * wherever it has a primitive for the geometry, and on the BLAS elsewhere;
 * it also brings the two batch-norm kernels (`BATCH_NORM_TRAIN_KERNEL` and
 * its gradient).
 * @returns Ten kernel configs, twelve with oneDNN.
 */
export function blasKernelConfigs(
  backendName: string,
  blas: Blas,
  scratch: Scratch = new Scratch(),
  dnnl?: Dnnl,
): tf.KernelConfig[] {
  const batchNorm = dnnl === undefined
    ? []
    : batchNormKernelConfigs(backendName, dnnl);
  return [
    ...batchNorm,
    ...copyFreeKernelConfigs(backendName),
    maxPoolGradKernelConfig(backendName, dnnl),
    ...reductionKernelConfigs(backendName, blas, scratch),
    ...convKernelConfigs(backendName, blas, scratch, dnnl),
    matMulKernelConfig(backendName, blas),
  ];
}

/** The native libraries the `blas` backend runs on. */
export interface NativeLibraries {
  /** The BLAS (matrix products, reductions, convolutions without oneDNN). */
  blas: Blas;
  /** oneDNN for the convolutions, when one loaded. */
  dnnl?: Dnnl;
  /** Why oneDNN is not in use, when it is not. */
  dnnlUnavailable?: string;
}

let libraries: NativeLibraries | undefined;

/**
 * Opens the BLAS and, when it can, oneDNN, once per process (both native
 * backends, `blas` and `native`, share them).
 *
 * @returns The libraries in use.
 * @throws {Error} When no BLAS opens, naming what was tried.
 */
export function loadNativeLibraries(): NativeLibraries {
  if (libraries !== undefined) return libraries;
  // oneDNN (OpenMP) and OpenBLAS (pthreads) each keep their worker threads
  // spinning for a while after a call; on a few cores the spinning threads
  // of one take the cores the other needs next (a ResNet-18 step: 2.9 s
  // with spinning, 2.4 s without). Both read these when they load.
  setEnvUnlessSet("OMP_WAIT_POLICY", "PASSIVE");
  let dnnl: Dnnl | undefined;
  let dnnlUnavailable: string | undefined;
  try {
    dnnl = loadDnnl();
    setEnvUnlessSet("OPENBLAS_THREAD_TIMEOUT", "4");
  } catch (error) {
    dnnlUnavailable = error instanceof Error ? error.message : String(error);
  }
  libraries = { blas: loadBlas(), dnnl, dnnlUnavailable };
  return libraries;
}

/**
 * Registers, for a backend that copied every kernel of `base`, the augment
 * kernels and the native ones of {@linkcode blasKernelConfigs} in place of
 * `base`'s, which keep the inputs the native ones leave.
 *
 * @param backendName The backend (already registered, kernels copied).
 * @param base The backend it copied (`wasm` or `cpu`).
 * @param libraries The BLAS and oneDNN.
 */
export function registerNativeKernels(
  backendName: string,
  base: string,
  { blas, dnnl }: Pick<NativeLibraries, "blas" | "dnnl">,
): void {
  setFallbackBackend(backendName, base);
  registerAugmentKernels(backendName);
  replaceKernels(blasKernelConfigs(backendName, blas, new Scratch(), dnnl));
}

/**
 * Registers each config in place of the kernel its backend has under that
 * name, if any.
 *
 * @param configs The kernels.
 */
export function replaceKernels(configs: tf.KernelConfig[]): void {
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, config.backendName) !== undefined) {
      tf.unregisterKernel(config.kernelName, config.backendName);
    }
    tf.registerKernel(config);
  }
}

let registered: Promise<NativeLibraries> | undefined;

/**
 * Registers the `blas` backend with TF.js once, without activating it: loads
 * the BLAS (see `loadBlas`) and, when it can, oneDNN for the convolutions
 * (see `loadDnnl`; without it they run on the BLAS), initialises the wasm
 * module, and registers a second wasm backend on it with every wasm kernel
 * plus the native ones.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs-core";
 * import { registerBlasBackend } from "./blas_backend.ts";
 * const { blas, dnnl } = await registerBlasBackend();
 * await tf.setBackend("blas");
 * console.log(blas.library, dnnl?.version);
 * ```
 *
 * @returns The libraries in use.
 * @throws {Error} When no BLAS opens, naming what was tried.
 */
export function registerBlasBackend(): Promise<NativeLibraries> {
  registered ??= (async () => {
    const { blas, dnnl, dnnlUnavailable } = loadNativeLibraries();
    await import("@tensorflow/tfjs-backend-wasm");
    let wasm = tf.findBackend("wasm") as unknown as WasmBackend | null;
    if (wasm === null) {
      // Initialises the wasm module (the only way TF.js exposes), then puts
      // the previous backend back.
      const previous = tf.getBackend();
      await tf.setBackend("wasm");
      wasm = tf.findBackend("wasm") as unknown as WasmBackend;
      if (previous !== undefined && previous !== "wasm") {
        await tf.setBackend(previous);
      }
    }
    const WasmClass = (wasm as unknown as { constructor: WasmConstructor })
      .constructor;
    const module = wasm.wasm;
    // A second backend object on the same wasm module: its own tensors,
    // the same heap and kernels. Disposing it must not tear the module
    // down under the `wasm` backend.
    const shared = wasm as unknown as { dataIdNextNumber: number };
    class BlasBackend extends WasmClass {
      constructor(module: unknown) {
        super(module);
        // The module keeps one table of tensors by id for both backends, and
        // each backend object numbers its tensors from 1: two live tensors,
        // one of each, would share an id and the kernels would read the
        // wrong one. Both draw from the wasm backend's counter instead.
        Object.defineProperty(this, "dataIdNextNumber", {
          get: () => shared.dataIdNextNumber,
          set: (next: number) => {
            shared.dataIdNextNumber = next;
          },
        });
      }
      override dispose(): void {}
    }
    // Priority 0: never chosen by TF.js on its own, only when named.
    tf.registerBackend(BLAS_BACKEND, () => new BlasBackend(module), 0);
    tf.copyRegisteredKernels("wasm", BLAS_BACKEND);
    registerNativeKernels(BLAS_BACKEND, "wasm", { blas, dnnl });
    return { blas, dnnl, dnnlUnavailable };
  })();
  registered.catch(() => registered = undefined);
  return registered;
}

type WasmConstructor = new (module: unknown) => tf.KernelBackend;

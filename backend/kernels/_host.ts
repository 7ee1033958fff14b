/**
 * Raw access to the float32 buffers of the host-memory backends (cpu-style
 * and wasm-style), shared by the kernels written as loops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { heapOf, type WasmBackend } from "./_wasm_heap.ts";

/** Raw access to a backend's float32 buffers, for kernels written as loops. */
export interface Host {
  /** An uninitialised float32 buffer of `shape`. */
  alloc(shape: number[]): tf.TensorInfo;
  /** A view of a buffer; valid until the next `alloc` or kernel call. */
  view(info: tf.TensorInfo): Float32Array;
  /** Releases a buffer made by `alloc` or by a kernel. */
  free(info: tf.TensorInfo): void;
  /** Runs another kernel of the same backend on backend-level buffers. */
  run(
    kernel: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap,
  ): tf.TensorInfo;
}

/**
 * Registers a kernel written on host buffers for one backend, unless that
 * backend already has it: `run` gets the inputs, the attributes (`{}` when
 * none) and the backend's {@linkcode Host}.
 *
 * @param kernelName The kernel's name.
 * @param backendName A cpu-style or wasm-style TF.js backend.
 * @param run The kernel.
 */
export function registerHostKernel(
  kernelName: string,
  backendName: string,
  run: (
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap,
    host: Host,
  ) => tf.TensorInfo,
): void {
  if (tf.getKernel(kernelName, backendName) !== undefined) return;
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      run(inputs, attrs ?? {}, hostFor(backend, backendName)),
  });
}

/**
 * Host access to a wasm-style (`typedArrayFromHeap`) or cpu-style (`data`)
 * backend's buffers.
 *
 * @param backend The kernel's backend object.
 * @param backendName Its TF.js name, for `run` and errors.
 * @returns The access.
 */
export function hostFor(backend: unknown, backendName: string): Host {
  const run = (
    kernel: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap,
  ): tf.TensorInfo => {
    const config = tf.getKernel(kernel, backendName);
    if (config === undefined) {
      throw new Error(
        `Kernel '${kernel}' not registered for backend '${backendName}'`,
      );
    }
    return config.kernelFunc({
      inputs,
      attrs,
      backend: backend as tf.KernelBackend,
    }) as tf.TensorInfo;
  };
  let heap: WasmBackend;
  try {
    heap = heapOf(backend);
  } catch {
    throw new TypeError(
      `Backend '${backendName}' gives no host access to its buffers`,
    );
  }
  const b = backend as { disposeData(dataId: tf.DataId): boolean };
  return {
    alloc: (shape) => heap.makeOutput(shape, "float32"),
    view: (info) => heap.typedArrayFromHeap(info),
    free: (info) => void b.disposeData(info.dataId),
    run,
  };
}

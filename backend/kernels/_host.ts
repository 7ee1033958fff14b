/**
 * Raw access to the float32 buffers of the host-memory backends (cpu-style
 * and wasm-style), shared by the kernels written as loops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

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

interface WasmLike {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

interface CpuLike {
  data: { get(dataId: tf.DataId): { values: unknown } };
  makeTensorInfo(
    shape: number[],
    dtype: "float32",
    values: Float32Array,
  ): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
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
  const wasm = backend as Partial<WasmLike>;
  if (typeof wasm.typedArrayFromHeap === "function") {
    const b = backend as WasmLike;
    return {
      alloc: (shape) => b.makeOutput(shape, "float32"),
      view: (info) => b.typedArrayFromHeap(info),
      free: (info) => void b.disposeData(info.dataId),
      run,
    };
  }
  const cpu = backend as Partial<CpuLike>;
  if (cpu.data !== undefined && typeof cpu.makeTensorInfo === "function") {
    const b = backend as CpuLike;
    return {
      alloc: (shape) =>
        b.makeTensorInfo(
          shape,
          "float32",
          new Float32Array(tf.util.sizeFromShape(shape)),
        ),
      view: (info) => {
        const values = b.data.get(info.dataId).values;
        if (!(values instanceof Float32Array)) {
          throw new TypeError(
            `Expected float32 data on backend '${backendName}'`,
          );
        }
        return values;
      },
      free: (info) => void b.disposeData(info.dataId),
      run,
    };
  }
  throw new TypeError(
    `Backend '${backendName}' gives no host access to its buffers`,
  );
}

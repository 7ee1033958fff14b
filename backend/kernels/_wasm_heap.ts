/**
 * The wasm backend's heap as the `blas` backend's kernels use it: checked
 * float32 inputs, outputs made on the heap with views of the inputs, shared
 * buffers, and wasm's own kernels to fall back to.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** The wasm backend's buffer access, as the BLAS kernels use it. */
export interface WasmBackend {
  /** The wasm module. */
  wasm: unknown;
  /**
   * A new float32 output on the heap.
   *
   * @param shape Its shape.
   * @param dtype `float32`.
   * @returns The output.
   */
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  /**
   * A view of a tensor's floats on the heap.
   *
   * @param info The tensor.
   * @returns The view (detached when the heap grows).
   */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/** A rank-4 shape (`[N, H, W, C]`, or a filter's `[KH, KW, Ci, Co]`). */
export type Shape4 = [number, number, number, number];

/**
 * A kernel's float32 input, checked.
 *
 * @param inputs The kernel's inputs.
 * @param name The input's name.
 * @param kernel The kernel's name, for messages.
 * @param rank The rank expected, if any.
 * @returns The input.
 * @throws {TypeError} When it is missing, not float32 or of another rank.
 */
export function float32(
  inputs: tf.NamedTensorInfoMap,
  name: string,
  kernel: string,
  rank?: number,
): tf.TensorInfo {
  const info = inputs[name];
  if (info === undefined) {
    throw new TypeError(`${kernel}: missing input '${name}'`);
  }
  if (info.dtype !== "float32") {
    throw new TypeError(
      `${kernel}: expected '${name}' float32: received ${info.dtype}`,
    );
  }
  if (rank !== undefined && info.shape.length !== rank) {
    throw new TypeError(
      `${kernel}: expected '${name}' of rank ${rank}: received rank ${info.shape.length}`,
    );
  }
  return info;
}

/**
 * Runs `compute` on heap views of `inputs` and a new output of `shape`.
 * Views are taken after the output is allocated: an allocation may grow the
 * wasm memory, which detaches earlier views.
 *
 * @param backend The wasm-style backend.
 * @param shape The output's shape.
 * @param inputs The inputs to view.
 * @param compute Fills the output from the views.
 * @returns The output.
 */
export function withHeap(
  backend: WasmBackend,
  shape: number[],
  inputs: tf.TensorInfo[],
  compute: (out: Float32Array, ...views: Float32Array[]) => void,
): tf.TensorInfo {
  const out = backend.makeOutput(shape, "float32");
  if (tf.util.sizeFromShape(shape) === 0) return out;
  compute(
    backend.typedArrayFromHeap(out),
    ...inputs.map((i) => backend.typedArrayFromHeap(i)),
  );
  return out;
}

/**
 * `x`'s buffer as a new output (one more reference, no copy).
 *
 * @param backend The backend holding `x`.
 * @param x The tensor.
 * @returns The new output.
 */
export function shareBuffer(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as { incRef(id: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * wasm's own kernel, for inputs the native kernels leave to it.
 *
 * @param kernelName The kernel.
 * @returns Its wasm config.
 * @throws {TypeError} When wasm has none.
 */
export function wasmKernel(kernelName: string): tf.KernelConfig {
  const config = tf.getKernel(kernelName, "wasm");
  if (config === undefined) {
    throw new TypeError(`${kernelName}: no wasm kernel to fall back to`);
  }
  return config;
}
